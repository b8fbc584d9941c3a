"""What a block device holds now, and whether anything is using it.

``disk_setup``/``fs_setup`` and ``bootseed_raid`` decide from these facts whether a
device is blank (and may be written) or holds something (and is left alone). The
content comes from ``blkid -p`` (a low-level probe of the device itself, not the
cache), run from the target; partitions, holders and sizes from the kernel's sysfs,
and use from ``/proc/self/mountinfo`` and ``/proc/swaps`` (kernel views, as in
``partitions.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bootseed.early.blockdev import mount_table
from bootseed.late.execute import find_tool, run_captured
from bootseed.late.partitions import SYS, name_of_node
from bootseed.late.target import TargetRoot

PROBE_TIMEOUT_S = 60.0
SECTOR = 512


class ProbeError(Exception):
    """A device could not be probed (no blkid, or blkid failed)."""


@dataclass(frozen=True)
class Content:
    """What ``blkid -p`` found on one device."""

    device: str
    fstype: str | None = None  # "ext4", "swap", "linux_raid_member", ...
    label: str | None = None  # for an md member: the array's name ("host:md0")
    uuid: str | None = None  # for an md member: the array's UUID
    pttype: str | None = None  # "gpt", "dos"

    @property
    def empty(self) -> bool:
        return self.fstype is None and self.pttype is None

    def describe(self) -> str:
        if self.pttype is not None:
            return f"a {self.pttype} partition table"
        if self.fstype == "linux_raid_member":
            return f"an md RAID member of array {self.label or self.uuid or '?'}"
        if self.fstype is not None:
            return f"a {self.fstype} filesystem" + (f" labelled {self.label!r}"
                                                    if self.label else "")
        return "nothing"


def kernel_name(target: TargetRoot, device: str) -> str | None:
    """The kernel name of ``device`` (a node path in the target, symlinks followed)."""
    if not target.exists(device):
        return None
    return name_of_node(str(target.real_path(device)))


def probe(target: TargetRoot, device: str) -> Content:
    """``blkid -p`` of ``device``: nothing found is an empty :class:`Content`."""
    tool = find_tool(target, "blkid")
    if tool is None:
        raise ProbeError("the target has no blkid command")
    run = run_captured(target, [tool, "-p", "-o", "export", device],
                       timeout=PROBE_TIMEOUT_S, keep=8192)
    if run.returncode == 2:  # blkid: nothing was found
        return Content(device)
    if run.returncode != 0:
        raise ProbeError(f"blkid -p {device} exited with status {run.returncode}: "
                         f"{' '.join(run.output.split())[-200:]}")
    values: dict[str, str] = {}
    for line in run.output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return Content(device, fstype=values.get("TYPE"), label=values.get("LABEL"),
                   uuid=values.get("UUID"), pttype=values.get("PTTYPE"))


def partitions(name: str, sys: str = SYS) -> list[tuple[int, str]]:
    """The partitions of disk ``name`` as ``(number, kernel name)``, by number."""
    found: list[tuple[int, str]] = []
    folder = Path(sys, "class", "block", name)
    try:
        children = list(Path(os.path.realpath(folder)).iterdir())
    except OSError:
        return found
    for child in children:
        try:
            number = int((child / "partition").read_text().strip())
        except (OSError, ValueError):
            continue
        found.append((number, child.name))
    return sorted(found)


def partition_name(name: str, number: int, sys: str = SYS) -> str | None:
    """The kernel name of partition ``number`` of disk ``name``, if the kernel has it."""
    return next((part for n, part in partitions(name, sys) if n == number), None)


def size_bytes(name: str, sys: str = SYS) -> int:
    return int(Path(sys, "class", "block", name, "size").read_text().strip()) * SECTOR


def holders(name: str, sys: str = SYS) -> list[str]:
    """Devices built on ``name`` (an md array or device-mapper device using it)."""
    try:
        return sorted(p.name for p in Path(sys, "class", "block", name, "holders").iterdir())
    except OSError:
        return []


def users(name: str, sys: str = SYS, mountinfo: str = "/proc/self/mountinfo",
          swaps: str = "/proc/swaps") -> list[str]:
    """What uses device ``name`` or one of its partitions right now: mount points,
    ``swap``, holder devices. Empty when nothing does."""
    names = {name, *(part for _, part in partitions(name, sys))}
    numbers: set[tuple[int, int]] = set()
    for each in names:
        try:
            major, _, minor = Path(sys, "class", "block", each, "dev").read_text().strip() \
                .partition(":")
            numbers.add((int(major), int(minor)))
        except (OSError, ValueError):
            continue
    found: list[str] = []
    try:
        for entry in mount_table(mountinfo):
            source_name = Path(entry.source).name if entry.source.startswith("/dev/") else ""
            if entry.majmin in numbers or source_name in names:
                found.append(entry.mountpoint)
    except OSError:
        pass
    try:
        for line in Path(swaps).read_text().splitlines()[1:]:
            fields = line.split()
            if fields and Path(os.path.realpath(fields[0])).name in names:
                found.append("swap")
    except OSError:
        pass
    for each in sorted(names):
        found += holders(each, sys)
    return found
