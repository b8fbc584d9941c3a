"""Can GRUB write its environment block where ``/boot/grub`` lives?

GRUB's ``save_env`` rewrites the block's sectors through the file's block
list; it refuses (or would corrupt data) on RAID, LVM, encrypted devices and
on filesystems whose blocks are not where the block list says (btrfs, ZFS).
There boot counting cannot work and only GRUB's ``fallback`` variable is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootseed.late.fallback.config import Mode
from bootseed.late.target import TargetRoot

UNWRITABLE_FS = {"btrfs": "btrfs", "zfs": "ZFS"}


@dataclass(frozen=True)
class MountEntry:
    mountpoint: str
    fstype: str
    source: str
    device: str  # major:minor


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries: list[MountEntry] = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        dash = fields.index("-")
        if len(fields) < dash + 3:
            continue
        mountpoint = fields[4].replace("\\040", " ")
        entries.append(MountEntry(mountpoint, fields[dash + 1], fields[dash + 2], fields[2]))
    return entries


def mount_of(path: Path, entries: list[MountEntry]) -> MountEntry | None:
    """The entry of the filesystem holding ``path`` (longest mount point prefix, last wins)."""
    best: MountEntry | None = None
    text = str(path)
    for entry in entries:
        mp = entry.mountpoint.rstrip("/") or "/"
        covers = text == mp or text.startswith(mp + "/") or mp == "/"
        if covers and (best is None or len(mp) >= len(best.mountpoint.rstrip("/") or "/")):
            best = entry
    return best


def detect_mode(target: TargetRoot, mountinfo: Path = Path("/proc/self/mountinfo"),
                sys_block: Path = Path("/sys/dev/block")) -> tuple[Mode, str]:
    """(mode, why) for the filesystem holding the target's ``/boot/grub``."""
    try:
        entries = parse_mountinfo(mountinfo.read_text(encoding="utf-8"))
    except OSError:
        return Mode.COUNTER, f"{mountinfo} unreadable; assuming a plain filesystem"
    grub_dir = target.path("/boot/grub")
    entry = mount_of(grub_dir, entries)
    if entry is None:
        return Mode.COUNTER, "no mount found; assuming a plain filesystem"
    where = f"/boot/grub is on {entry.source} ({entry.fstype})"
    if entry.fstype in UNWRITABLE_FS:
        return Mode.VARIABLE, f"{where}: GRUB cannot write to {UNWRITABLE_FS[entry.fstype]}"
    source = entry.source
    if source.startswith("/dev/md") or (sys_block / entry.device / "md").exists():
        return Mode.VARIABLE, f"{where}: GRUB cannot write to software RAID"
    if source.startswith(("/dev/mapper/", "/dev/dm-")) or (sys_block / entry.device / "dm"
                                                           ).exists():
        return Mode.VARIABLE, f"{where}: GRUB cannot write to LVM or device-mapper volumes"
    return Mode.COUNTER, f"{where}: GRUB can write its environment block"


def boot_is_separate(target: TargetRoot, mountinfo: Path = Path("/proc/self/mountinfo")) -> bool:
    """Is ``/boot`` its own filesystem (so GRUB sees ``/boot/x`` as ``/x``)?"""
    try:
        entries = parse_mountinfo(mountinfo.read_text(encoding="utf-8"))
    except OSError:
        return False
    boot = str(target.path("/boot"))
    return any(e.mountpoint == boot for e in entries)
