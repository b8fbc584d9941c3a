"""Crash-safe file writes shared by both stages: write a temp file, fsync, rename.

Temp files are named ``.<name>.tmp-<pid>``. A writer killed between create and
rename leaves one behind; the next write of the same file removes every such
leftover whose process is gone, so re-runs converge on no temp files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes | str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new file, never half.

    The temp file is created with ``mode`` from the start, so a secret is never
    briefly world-readable.
    """
    target = Path(path)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        atomic_write_at(fd, target.name, data, mode=mode)
    finally:
        os.close(fd)


def atomic_write_at(dir_fd: int, name: str, data: bytes | str, mode: int = 0o600,
                    owner: tuple[int, int] | None = None) -> None:
    """``atomic_write`` of ``name`` in the open directory ``dir_fd`` (no path is re-walked,
    so a symlink swapped in above the directory cannot redirect the write)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    remove_stale_temps(dir_fd, name)
    tmp = f".{name}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode & 0o777, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if owner is not None:
                os.fchown(handle.fileno(), owner[0], owner[1])
            # After chown: chown clears setuid/setgid, and mode may carry them.
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    try:
        os.fsync(dir_fd)
    except OSError:
        pass


def remove_stale_temps(dir_fd: int, name: str) -> list[str]:
    """Remove ``.<name>.tmp-<pid>`` files in ``dir_fd`` left by processes that are gone."""
    pattern = re.compile(rf"\.{re.escape(name)}\.tmp-(\d+)")
    removed: list[str] = []
    try:
        entries = os.listdir(dir_fd)
    except OSError:
        return removed
    for entry in entries:
        found = pattern.fullmatch(entry)
        if found is None or _alive(int(found.group(1))):
            continue
        try:
            os.unlink(entry, dir_fd=dir_fd)
            removed.append(entry)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
