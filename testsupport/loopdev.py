"""Real block devices for disk tests: sparse files in a temp dir attached as loop devices.

The kernel keeps a loop device's partitions after it is detached in some sandboxes, so
each device's partitions are dropped from the kernel (``partx --delete``) when it is
attached and again before it is detached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MiB = 1024 * 1024
TOOLS = ("losetup", "partx", "blkid", "sfdisk", "wipefs", "mkfs.ext4")


def unavailable() -> str | None:
    """Why loop-device tests cannot run here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "needs root for loop devices"
    if not os.path.exists("/dev/loop-control"):
        return "no /dev/loop-control: loop devices are not available"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return None


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _forget_partitions(loop: str) -> None:
    subprocess.run(["partx", "--delete", loop], capture_output=True, check=False)


@contextmanager
def loop_devices(folder: Path, sizes_mib: list[int]) -> Iterator[list[str]]:
    """Blank (all-zero, sparse) loop devices of the given sizes."""
    attached: list[str] = []
    try:
        for index, size in enumerate(sizes_mib):
            image = folder / f"disk{index}.img"
            with open(image, "wb") as handle:
                handle.truncate(size * MiB)
            loop = sh("losetup", "--find", "--show", str(image))
            attached.append(loop)
            _forget_partitions(loop)
        yield attached
    finally:
        for loop in attached:
            _forget_partitions(loop)
            subprocess.run(["losetup", "--detach", loop], capture_output=True, check=False)


def blkid(device: str, tag: str) -> str | None:
    """One tag of a low-level probe (``TYPE``, ``UUID``, ``LABEL``, ``PTTYPE``)."""
    proc = subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, device],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or None
