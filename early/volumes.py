"""Volume consumption: read ``bootseed-volume.yaml`` from the attached volumes.

Rescue, root take-over and the overlay root all work on filesystems other than the
root the initramfs mounted; the devices, the mount table and the mounts come from
``bootseed.early.blockdev``. This module mounts each candidate read-only, one at a time,
with every mount charged to one time budget, and reads what its volume file asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bootseed.contract.actions import VolumeAction, VolumeExec, VolumeMount, VolumeRef
from bootseed.early.blockdev import BlockDevError, BlockDevice, mounted
from bootseed.early.budget import Budget

VOLUME_FILE = "bootseed-volume.yaml"
VOLUME_FILE_MAX = 64 * 1024
VOLUME_ACTIONS = ("root", "mount", "exec")
# Types worth mounting to look for a volume file; swap, LVM, RAID members, LUKS are not.
MOUNTABLE = frozenset({"ext4", "ext3", "ext2", "xfs", "btrfs", "vfat", "iso9660", "udf", "f2fs"})


class VolumeError(Exception):
    """A volume's ``bootseed-volume.yaml`` is bad."""


@dataclass
class VolumeSpec:
    """A parsed ``bootseed-volume.yaml`` and the volume that holds it."""

    action: str
    volume: BlockDevice
    mountpoint: str | None = None
    options: str = "defaults"
    run: str | None = None

    def as_action(self) -> VolumeAction:
        """The record for the late agent (``mount`` and ``exec``; ``root`` is decided here)."""
        volume = VolumeRef.from_dict(self.volume.as_dict())
        if self.action == "mount" and self.mountpoint is not None:
            return VolumeMount(volume, self.mountpoint, self.options)
        if self.action == "exec" and self.run is not None:
            return VolumeExec(volume, self.run)
        raise ValueError(f"action {self.action!r} is not recorded for the late agent")


@dataclass
class ScanResult:
    specs: list[VolumeSpec] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    timed_out: bool = False


# --- bootseed-volume.yaml --------------------------------------------------------------

def parse_volume_file(data: bytes, volume: BlockDevice, where: str) -> VolumeSpec:
    """Parse ``bootseed-volume.yaml``; ``VolumeError`` names the file and the problem."""
    from bootseed.early.sources.metadata import MetadataError, parse_meta_data

    try:
        doc = parse_meta_data(data)
    except (MetadataError, UnicodeDecodeError) as exc:
        raise VolumeError(f"{where}: {exc}") from exc
    if not isinstance(doc, dict):
        raise VolumeError(f"{where}: expected a mapping with 'action:'")
    action = str(doc.get("action") or "").strip().lower()
    if action not in VOLUME_ACTIONS:
        raise VolumeError(f"{where}: action: {doc.get('action')!r}; expected one of "
                          f"{', '.join(VOLUME_ACTIONS)}")
    unknown = sorted(set(doc) - {"action", "mountpoint", "options", "run"})
    if unknown:
        raise VolumeError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    spec = VolumeSpec(action=action, volume=volume)
    if action == "mount":
        mountpoint = doc.get("mountpoint")
        if not isinstance(mountpoint, str) or not mountpoint.startswith("/") \
                or ".." in mountpoint.split("/") or mountpoint.rstrip("/") == "":
            raise VolumeError(f"{where}: mountpoint: needs an absolute path other than /, "
                              f"got {mountpoint!r}")
        options = doc.get("options", "defaults")
        if not isinstance(options, str) or not options or any(c.isspace() for c in options):
            raise VolumeError(f"{where}: options: needs mount options without spaces")
        spec.mountpoint, spec.options = mountpoint.rstrip("/") or "/", options
    elif action == "exec":
        script = doc.get("run")
        if not isinstance(script, str) or not script or script.startswith("/") \
                or ".." in script.split("/"):
            raise VolumeError(f"{where}: run: needs a path relative to the volume's root, "
                              f"got {script!r}")
        spec.run = script
    return spec


def read_volume_file(root: Path, volume: BlockDevice) -> VolumeSpec | None:
    where = f"{volume.describe()}:/{VOLUME_FILE}"
    path = root / VOLUME_FILE
    if path.is_symlink() or not path.is_file():
        return None
    with open(path, "rb") as handle:
        data = handle.read(VOLUME_FILE_MAX + 1)
    if len(data) > VOLUME_FILE_MAX:
        raise VolumeError(f"{where}: larger than {VOLUME_FILE_MAX} bytes")
    spec = parse_volume_file(data, volume, where)
    if spec.run is not None and not (root / spec.run).is_file():
        raise VolumeError(f"{where}: run: {spec.run}: no such file on the volume")
    return spec


def scan_volume_files(volumes: Sequence[BlockDevice], budget: Budget,
                      allowed: Sequence[str] = VOLUME_ACTIONS,
                      mount_base: str = "/run") -> ScanResult:
    """Mount each candidate read-only, one at a time, and read its volume file."""
    result = ScanResult()
    for volume in volumes:
        if volume.fstype not in MOUNTABLE:
            continue
        if budget.exhausted:
            result.timed_out = True
            result.problems.append(f"volume scan stopped after {budget.seconds:g}s; "
                                   f"not scanned: {volume.describe()}")
            continue
        result.scanned.append(volume.path)
        try:
            with mounted(volume, budget.cap(15.0), mount_base) as root:
                spec = read_volume_file(root, volume)
        except (BlockDevError, VolumeError) as exc:
            result.problems.append(str(exc))
            continue
        except OSError as exc:
            result.problems.append(f"{volume.describe()}: {exc}")
            continue
        if spec is None:
            continue
        if spec.action not in allowed:
            result.problems.append(f"{volume.describe()}: action {spec.action} is turned off "
                                   f"(volumes.actions in the image config); ignored")
            continue
        result.specs.append(spec)
    return result
