"""Which block device, and which partition of which disk, holds a mounted path.

``growpart`` and ``resizefs`` need, for a path such as ``/``, the filesystem mounted
there and the disk partition under it. The kernel's views answer that: the mount
table (``/proc/self/mountinfo``) gives the mount holding the path and its device
number; ``/sys/dev/block/MAJ:MIN`` names the device (so ``/dev/root`` and by-uuid
sources do not matter); ``/sys/class/block/NAME/partition`` holds the partition
number, and the parent directory in sysfs is the disk. A path of a ``--root`` target
is looked up by its host path: the target's mounts are host mounts.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bootseed.early.blockdev import MountEntry, mount_table

MOUNTINFO = "/proc/self/mountinfo"
SYS = "/sys"


@dataclass(frozen=True)
class Mounted:
    """The mount holding a path, and its block device (``None`` for tmpfs, overlay…)."""

    mountpoint: str  # host path
    fstype: str
    device: str | None  # kernel name, e.g. "vda1" (the node is /dev/<name>)


@dataclass(frozen=True)
class Partition:
    name: str  # "vda1", "nvme0n1p2", "loop3p1"
    disk: str  # "vda", "nvme0n1", "loop3"
    number: int

    @property
    def node(self) -> str:
        return f"/dev/{self.name}"

    @property
    def disk_node(self) -> str:
        return f"/dev/{self.disk}"


def mount_holding(host_path: str | os.PathLike[str], mountinfo: str = MOUNTINFO
                  ) -> MountEntry | None:
    """The topmost mount whose mount point is ``host_path`` or its nearest ancestor."""
    path = os.path.realpath(host_path)
    best: MountEntry | None = None
    for entry in mount_table(mountinfo):
        point = entry.mountpoint
        inside = path == point or point == "/" or path.startswith(point.rstrip("/") + "/")
        # Later lines are mounted on top of earlier ones on the same point.
        if inside and (best is None or len(point) >= len(best.mountpoint)):
            best = entry
    return best


def device_name(entry: MountEntry, sys: str = SYS) -> str | None:
    """The kernel name of the block device under a mount, or ``None`` if there is none."""
    major, minor = entry.majmin
    if major != 0:
        link = Path(sys, "dev", "block", f"{major}:{minor}")
        if link.exists():
            return Path(os.path.realpath(link)).name
    # btrfs reports an anonymous device number; its mount source names the device.
    if entry.source.startswith("/dev/"):
        name = Path(os.path.realpath(entry.source)).name
        if Path(sys, "class", "block", name).exists():
            return name
    return None


def mounted(host_path: str | os.PathLike[str], mountinfo: str = MOUNTINFO,
            sys: str = SYS) -> Mounted | None:
    entry = mount_holding(host_path, mountinfo)
    if entry is None:
        return None
    return Mounted(entry.mountpoint, entry.fstype, device_name(entry, sys))


def partition_of(name: str, sys: str = SYS) -> Partition | None:
    """``name`` as a partition of its disk, or ``None`` for a whole disk, a device-mapper
    or md device, or a name sysfs does not know."""
    if not name or "/" in name or name in (".", ".."):
        return None
    entry = Path(sys, "class", "block", name)
    try:
        number = int((entry / "partition").read_text().strip())
    except (OSError, ValueError):
        return None
    disk = Path(os.path.realpath(entry)).parent.name
    if not Path(sys, "class", "block", disk).exists():
        return None
    return Partition(name, disk, number)


SECTOR = 512  # sysfs counts start and size in 512-byte units whatever the disk's sectors


def room_after(partition: Partition, sys: str = SYS) -> int | None:
    """Bytes free after ``partition`` on its disk: up to the next partition that starts
    after it, else to the disk's end (a GPT's backup table there counts as free, so the
    figure is an upper bound). ``None`` when sysfs does not say."""
    disk = Path(sys, "class", "block", partition.disk)
    try:
        start = int(Path(disk, partition.name, "start").read_text())
        end = start + int(Path(disk, partition.name, "size").read_text())
        limit = int(Path(disk, "size").read_text())
        for entry in disk.iterdir():
            if entry.name != partition.name and (entry / "partition").exists():
                other = int((entry / "start").read_text())
                if other >= end:
                    limit = min(limit, other)
    except (OSError, ValueError):
        return None
    return max(0, limit - end) * SECTOR


def name_of_node(node: str) -> str | None:
    """The kernel name for a device node path on the host (``/dev/disk/by-uuid/..`` too)."""
    try:
        st = os.stat(node)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    link = Path(SYS, "dev", "block", f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    return Path(os.path.realpath(link)).name if link.exists() else None


def own_mount(target_root: Path, host_path: str | os.PathLike[str],
              mountinfo: str = MOUNTINFO, sys: str = SYS) -> Mounted | None:
    """The mount holding ``host_path`` when it belongs to the target rooted at
    ``target_root`` (mounted at the root or below it); ``None`` when the path lies on a
    filesystem mounted above the target (a target that is a plain directory on the
    host must never grow the host's disk)."""
    found = mounted(host_path, mountinfo, sys)
    root = os.path.realpath(target_root)
    if found is None:
        return None
    if root != "/" and not (found.mountpoint == root
                            or found.mountpoint.startswith(root.rstrip("/") + "/")):
        return None
    return found
