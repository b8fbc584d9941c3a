"""Run user commands and scripts inside the target root.

On the host root (``/``) a command runs directly. For any other target root it
runs under ``chroot``, which needs a shell in the target; a target without
``/bin/sh`` is refused rather than letting a command touch the host. Output
(stdout and stderr) is appended to ``/var/log/user_data.log`` (0600) in the
target, never to the agent's own log, because scripts may print secrets. The name
bootseed used before, ``/var/log/user-data.log``, is a symlink to it (made through
:class:`TargetRoot`, so a planted link never sends the write elsewhere); an old log of
that name that is a regular file is left as it is.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bootseed.late.logsetup import USER_OUTPUT_LINK, USER_OUTPUT_LOG, open_private_append
from bootseed.late.target import TargetPathError, TargetRoot

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class TargetExecError(RuntimeError):
    """A command could not be started, or it exited non-zero."""


@dataclass(frozen=True)
class ExecResult:
    argv: tuple[str, ...]
    returncode: int


def can_run_in(target: TargetRoot) -> bool:
    # lexists: /bin/sh is usually an absolute symlink meaningful only inside the target.
    return target.is_host or os.path.lexists(target.path("/bin/sh"))


def commands_to_script(commands: Sequence[object], where: str) -> str:
    """cloud-init's ``bootcmd`` / ``runcmd`` form: a string is a shell line, a list is an
    argv (quoted for the shell)."""
    lines = ["#!/bin/sh"]
    for index, entry in enumerate(commands):
        if isinstance(entry, str):
            lines.append(entry)
        elif isinstance(entry, list) and all(isinstance(a, str | int | float) for a in entry):
            lines.append(shlex.join(str(a) for a in entry))
        else:
            raise TargetExecError(
                f"{where}[{index}]: must be a string or a list of strings, "
                f"got {type(entry).__name__}"
            )
    return "\n".join(lines) + "\n"


def run_in_target(
    target: TargetRoot,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> ExecResult:
    """Run ``argv`` (paths as the target sees them) and raise unless it exits 0."""
    label = what or shlex.join(argv)
    command, full_env = _prepared(target, argv, env, label)
    fd = open_user_log(target)
    try:
        os.write(fd, f"--- bootseed: {label}\n".encode())
        try:
            proc = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                env=full_env, cwd="/" if target.is_host else str(target.root), check=False,
            )
        except OSError as exc:
            raise TargetExecError(f"{label}: cannot start: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if proc.returncode != 0:
        raise TargetExecError(f"{label}: exited with status {proc.returncode}"
                              f" (output in {USER_OUTPUT_LOG})")
    return ExecResult(tuple(argv), proc.returncode)


def open_user_log(target: TargetRoot) -> int:
    """The user output log, opened for appending (0600), with its compatibility link."""
    log = target.real_path(USER_OUTPUT_LOG)
    log.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = open_private_append(log, 0o600)
    _link_old_name(target)
    return fd


def _link_old_name(target: TargetRoot) -> None:
    link_text = os.path.basename(USER_OUTPUT_LOG)
    try:
        old = target.lstat(USER_OUTPUT_LINK)
    except FileNotFoundError:
        old = None
    except (OSError, TargetPathError):
        return
    if old is not None and not stat.S_ISLNK(old.st_mode):
        return
    try:  # replacing a link (ours or planted) is atomic and never follows it
        target.symlink(USER_OUTPUT_LINK, link_text)
    except (OSError, TargetPathError):
        pass  # only a convenience; the log itself is written


def _prepared(
    target: TargetRoot, argv: Sequence[str], env: Mapping[str, str] | None, label: str
) -> tuple[list[str], dict[str, str]]:
    """The host argv (under ``chroot`` for a target that is not ``/``) and environment."""
    if not can_run_in(target):
        raise TargetExecError(
            f"{label}: cannot run commands in a target without /bin/sh ({target.root})"
        )
    full_env = {"PATH": DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    if env:
        full_env.update(env)
    command = list(argv) if target.is_host else ["chroot", str(target.root), *argv]
    return command, full_env


@dataclass(frozen=True)
class CapturedRun:
    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr together, at most the last ``keep`` bytes
    timed_out: bool = False


def run_captured(
    target: TargetRoot,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    keep: int = 64 * 1024,
    stdin: bytes | None = None,
) -> CapturedRun:
    """Run a system tool (not user code) in the target and keep its output's tail.

    For tools whose output the status must quote (apt-get): never raises on a
    non-zero exit; a run past ``timeout`` seconds is killed and says so. ``stdin``
    is the tool's whole input (a script for sfdisk); without it the input is empty."""
    label = shlex.join(argv)
    command, full_env = _prepared(target, argv, env, label)
    try:
        proc = subprocess.run(
            command, input=stdin if stdin is not None else b"", stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=full_env,
            cwd="/" if target.is_host else str(target.root), timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.output or b""
        return CapturedRun(tuple(argv), -1, out[-keep:].decode("utf-8", "replace"), True)
    except OSError as exc:
        raise TargetExecError(f"{label}: cannot start: {exc.strerror}") from exc
    return CapturedRun(tuple(argv), proc.returncode,
                       proc.stdout[-keep:].decode("utf-8", "replace"))


def start_detached(target: TargetRoot, argv: Sequence[str], log: str) -> int:
    """Start a system tool in the target and do not wait for it (it outlives the agent);
    its output is appended to ``log`` (a target path, 0600). Returns its pid."""
    label = shlex.join(argv)
    command, full_env = _prepared(target, argv, None, label)
    host_log = target.real_path(log)
    host_log.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = open_private_append(host_log, 0o600)
    try:
        os.write(fd, f"--- bootseed: {label}\n".encode())
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
            env=full_env, cwd="/" if target.is_host else str(target.root),
            start_new_session=True,
        )
    except OSError as exc:
        raise TargetExecError(f"{label}: cannot start: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return proc.pid


def run_script_dir(
    target: TargetRoot, directory: Path, *, env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (), before_first: Callable[[], None] | None = None,
) -> list[str]:
    """Run every executable-looking file in ``directory`` (host path) in name order; all
    run even if one fails. Returns the names run; raises once at the end listing failures.

    ``before_first`` is called once, just before the first script starts: the moment from
    which running the directory again could repeat a script's effects."""
    if not directory.is_dir():
        return []
    ran: list[str] = []
    failures: list[str] = []
    # Like run-parts: only executable files; a README beside the scripts is not run.
    scripts = (p for p in directory.iterdir() if p.is_file() and os.access(p, os.X_OK))
    for path in sorted(scripts):
        if before_first is not None and not ran:
            before_first()
        inside = "/" + str(path.relative_to(target.root)).lstrip("/")
        try:
            run_in_target(target, [*prefix, inside], env=env, what=inside)
        except TargetExecError as exc:
            failures.append(str(exc))
        ran.append(path.name)
    if failures:
        raise TargetExecError(f"{len(failures)} of {len(ran)} scripts failed: "
                              + "; ".join(failures))
    return ran


def find_tool(target: TargetRoot, name: str) -> str | None:
    """The path (as the target sees it) of command ``name`` on the default PATH."""
    for folder in DEFAULT_PATH.split(":"):
        path = f"{folder}/{name}"
        if target.is_host:
            if os.access(path, os.X_OK):
                return path
        elif os.access(target.real_path(path), os.X_OK):
            return path
    return None
