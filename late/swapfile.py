"""Swap files for the ``mounts`` module's ``swap`` key: sizes and creation.

``size``/``maxsize`` are bytes, or strings with a binary unit (``"512M"``, ``"2G"``,
``"1.5G"``; K, M, G, T, powers of 1024, an optional trailing ``B``). ``size: auto``
follows cloud-init 22.x's suggestion rule: with RAM ``mem`` below 4 GiB the swap is
``mem``, below 16 GiB 4 GiB, above that ``round(sqrt(mem in GiB))`` GiB; never more
than ``maxsize``, which defaults to a quarter of the free space of the swap file's
filesystem, at most twice the RAM, and a given ``maxsize`` is cut to 90% of the free
space.
"""

from __future__ import annotations

import errno
import math
import os
import re
from pathlib import Path

GiB = 1024**3
MiB = 1024**2
SWAP_MAGIC = b"SWAPSPACE2"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": MiB, "G": GiB, "T": 1024 * GiB}


def parse_size(value: object, what: str) -> int:
    """Bytes from an int or a string such as ``"2G"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a size")
    if isinstance(value, int | float) and value >= 0:
        return int(value)
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match:
            return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    raise ValueError(f"{what}: {value!r} is not a size (bytes, or a number with K, M, G "
                     "or T)")


def suggested_size(memory: int, free: int, maxsize: int | None) -> int:
    """cloud-init's ``size: auto`` rule (see the module docstring)."""
    limit = min(free // 4, 2 * memory) if maxsize is None else min(maxsize, int(free * 0.9))
    if memory < 4 * GiB:
        wanted = memory
    elif memory < 16 * GiB:
        wanted = 4 * GiB
    else:
        wanted = round(math.sqrt(memory / GiB)) * GiB
    return max(0, min(wanted, limit))


def memory_total(meminfo: str = "/proc/meminfo") -> int:
    for line in Path(meminfo).read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{meminfo} has no MemTotal")


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_frsize * st.f_bavail


def is_swap_file(path: Path) -> bool:
    """Whether ``path`` holds a swap signature (at the end of the first page)."""
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        with open(path, "rb") as handle:
            handle.seek(page - len(SWAP_MAGIC))
            return handle.read(len(SWAP_MAGIC)) == SWAP_MAGIC
    except OSError:
        return False


def allocate(path: Path, size: int) -> None:
    """A new file of ``size`` bytes, mode 0600, all blocks allocated (swap files may not
    have holes); never replaces an existing file or follows a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.fchmod(fd, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            _write_zeros(fd, size)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _write_zeros(fd: int, size: int) -> None:
    chunk = bytes(MiB)
    left = size
    while left > 0:
        left -= os.write(fd, chunk[:min(left, MiB)])
    os.fsync(fd)
