"""Run external tools for the image builder and the lab, with one failure type.

Every tool the builder drives (mmdebstrap, sgdisk, mkfs.ext4, qemu-img, ...)
goes through :func:`run`, so a failure always names the command and ends with
the tail of its error output, and a long build keeps the full output of every
step in one log file instead of on the terminal.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

_TAIL_LINES = 15


class CommandFailed(Exception):
    """A tool exited non-zero (or could not be started)."""

    def __init__(self, argv: Sequence[str], returncode: int, output_tail: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output_tail = output_tail
        first = shlex.join(self.argv)
        if len(first) > 160:
            first = first[:157] + "..."
        detail = output_tail.strip().splitlines()[-1] if output_tail.strip() else "no output"
        super().__init__(f"`{first}` exited {returncode}: {detail}")


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-_TAIL_LINES:])


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log: IO[str] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input_text: str | None = None,
) -> str:
    """Run ``argv``; return its stdout. Output also goes to ``log`` when given.

    Raises :class:`CommandFailed` on a non-zero exit, a missing program or a
    timeout; stderr's last lines are in the exception.
    """
    args = [os.fspath(a) for a in argv]
    full_env = None if env is None else {**os.environ, **env}
    if log is not None:
        log.write(f"$ {shlex.join(args)}\n")
        log.flush()
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=full_env,
            input=input_text,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(args, 127, f"{args[0]}: not installed ({exc.strerror})") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(args, -1, f"timed out after {timeout:.0f}s") from exc
    if log is not None:
        if proc.stdout:
            log.write(proc.stdout if proc.stdout.endswith("\n") else proc.stdout + "\n")
        if proc.stderr:
            log.write(proc.stderr if proc.stderr.endswith("\n") else proc.stderr + "\n")
        log.flush()
    if proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, _tail(proc.stderr or proc.stdout))
    return proc.stdout
