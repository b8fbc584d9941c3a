"""``output``: where the agent's own stdout and stderr go, per stage (cloud-init 22.4).

``output`` maps a stage (``init``, ``config``, ``final``; ``all`` for any stage not named)
to a destination: ``">> /path"`` (append), ``"> /path"`` (truncate) or ``"| command"``
(a shell command in the target reading it). The value is one string for both streams,
a list ``[out, err]`` or a mapping ``{output: ..., error: ...}``; an error destination
of ``&1`` (or the same text as the output's) shares the output's. The ``init`` stage is
the agent's local and network stages, applied once user-data is read (the key comes
from it), ``config`` and ``final`` from the start of theirs.

Files are opened inside the target (the last component never followed), created 0640
like the agent's own log. The original streams come back at the end of the run (a
pipe's command gets end-of-file and :data:`PIPE_WAIT_S` seconds to finish). A bad value
is a problem and the streams stay where they are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.execute import DEFAULT_PATH, can_run_in
from bootseed.late.logsetup import open_private_append
from bootseed.late.target import TargetPathError, TargetRoot

STAGES = ("init", "config", "final")
PIPE_WAIT_S = 5.0
FILE_MODE = 0o640
SAME_AS_OUTPUT = "&1"
_DESTINATION: dict[str, Any] = {"type": "string", "pattern": r"^\s*(>>?|\|)"}
_STAGE_VALUE: dict[str, Any] = {
    "oneOf": [
        _DESTINATION,
        {"type": "array", "minItems": 1, "maxItems": 2,
         "items": {"oneOf": [_DESTINATION, {"const": SAME_AS_OUTPUT}]}},
        {"type": "object", "additionalProperties": False,
         "properties": {"output": _DESTINATION,
                        "error": {"oneOf": [_DESTINATION, {"const": SAME_AS_OUTPUT}]}}},
    ],
}
# The ``output`` key's schema (the runner owns the key, not a module).
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {name: _STAGE_VALUE for name in ("all", *STAGES)},
}


class OutputSpecError(ValueError):
    """An ``output`` value that is none of the accepted forms."""


@dataclass(frozen=True)
class StageOutput:
    output: str | None
    error: str | None


def stage_output(cfg: dict[str, Any], stage: str) -> StageOutput | None:
    """The destinations for ``stage``, or None when ``output`` names none for it."""
    spec = cfg.get("output")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise OutputSpecError("must be a mapping of stage (init, config, final, all) to "
                              "a destination")
    value = spec.get(stage, spec.get("all"))
    if value is None:
        return None
    if isinstance(value, str):
        out: object = value
        err: object = value
    elif isinstance(value, list) and 1 <= len(value) <= 2:
        out, err = value[0], value[-1] if len(value) == 2 else value[0]
    elif isinstance(value, dict):
        out, err = value.get("output"), value.get("error")
    else:
        raise OutputSpecError(f"{stage}: expected a string, [output, error] or "
                              "{output, error}")
    for what, dest in (("output", out), ("error", err)):
        if dest is not None and not isinstance(dest, str):
            raise OutputSpecError(f"{stage}: the {what} destination must be a string")
    assert out is None or isinstance(out, str)
    assert err is None or isinstance(err, str)
    if err == SAME_AS_OUTPUT:
        err = out
    for dest in (out, err):
        if dest is not None:
            _parse(dest, stage)
    return StageOutput(out, err)


def _parse(dest: str, stage: str) -> tuple[str, str]:
    """("pipe", command) | ("append", path) | ("truncate", path)."""
    text = dest.strip()
    if text.startswith("|"):
        command = text[1:].strip()
        if command:
            return "pipe", command
    elif text.startswith(">>"):
        path = text[2:].strip()
        if path.startswith("/"):
            return "append", path
    elif text.startswith(">"):
        path = text[1:].strip()
        if path.startswith("/"):
            return "truncate", path
    raise OutputSpecError(f"{stage}: {dest!r} is not '>> /path', '> /path' or '| command'")


class OutputRedirector:
    """Points file descriptors 1 and 2 of this process at a stage's destinations."""

    def __init__(self, target: TargetRoot) -> None:
        self.target = target
        self.current: StageOutput | None = None
        self._saved: dict[int, int] = {}
        self._pipes: list[subprocess.Popen[bytes]] = []

    def apply(self, cfg: dict[str, Any], stage: str) -> list[Problem]:
        where = f"output.{stage}"
        try:
            wanted = stage_output(cfg, stage)
        except OutputSpecError as exc:
            return [Problem("output", f"{exc}; output left where it was")]
        if wanted is None or wanted == self.current:
            return []
        try:
            fds = self._open(wanted)
        except (OSError, TargetPathError, OutputSpecError) as exc:
            return [Problem(where, f"cannot redirect: {exc}; output left where it was")]
        sys.stdout.flush()
        sys.stderr.flush()
        for stream_fd, new_fd in fds.items():
            if stream_fd not in self._saved:
                self._saved[stream_fd] = os.dup(stream_fd)
            os.dup2(new_fd, stream_fd)
        for new_fd in set(fds.values()):
            os.close(new_fd)
        self.current = wanted
        return []

    def restore(self) -> None:
        if not self._saved:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for stream_fd, saved in self._saved.items():
            os.dup2(saved, stream_fd)
            os.close(saved)
        self._saved.clear()
        self.current = None
        for proc in self._pipes:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(PIPE_WAIT_S)
            except subprocess.TimeoutExpired:
                pass  # left to finish on its own; the run does not wait for it
        self._pipes.clear()

    def _open(self, wanted: StageOutput) -> dict[int, int]:
        opened: dict[str, int] = {}
        fds: dict[int, int] = {}
        try:
            for stream_fd, dest in ((1, wanted.output), (2, wanted.error)):
                if dest is None:
                    continue
                if dest not in opened:
                    opened[dest] = self._open_one(dest)
                fds[stream_fd] = opened[dest]
        except BaseException:
            for fd in opened.values():
                os.close(fd)
            raise
        return fds

    def _open_one(self, dest: str) -> int:
        kind, value = _parse(dest, "output")
        if kind == "pipe":
            return self._pipe(value)
        path = self.target.real_path(value)
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if kind == "truncate":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                         FILE_MODE)
            return fd
        return open_private_append(path, FILE_MODE)

    def _pipe(self, command: str) -> int:
        if not can_run_in(self.target):
            raise OutputSpecError(f"cannot run {command!r} in a target without /bin/sh")
        argv = ["sh", "-c", command]
        if not self.target.is_host:
            argv = ["chroot", str(self.target.root), *argv]
        # The command writes where the agent's own streams went before any redirection
        # (the journal and console under systemd), as cloud-init's "| tee -a FILE" expects.
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._saved.get(1),
                                stderr=self._saved.get(2), start_new_session=True,
                                env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"},
                                cwd="/" if self.target.is_host else str(self.target.root))
        assert proc.stdin is not None
        self._pipes.append(proc)
        return os.dup(proc.stdin.fileno())
