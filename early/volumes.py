"""Block volumes for the root decisions: identify, find, mount, and read ``bootseed-volume.yaml``.

Rescue, root take-over and the overlay root all work on filesystems other than the
root the initramfs mounted. This module finds them (label, UUID, type, device number
from libblkid or the ``blkid`` binary), reads the mount table, and mounts them.

Scanning is safe by construction: one candidate at a time, read-only with journal
replay turned off (``noload`` / ``norecovery``: a read-only ext4 mount still replays a
dirty journal, i.e. writes), every mount and wait charged to one time budget.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.actions import VolumeAction, VolumeExec, VolumeMount, VolumeRef
from bootseed.early.budget import Budget

VOLUME_FILE = "bootseed-volume.yaml"
VOLUME_FILE_MAX = 64 * 1024
VOLUME_ACTIONS = ("root", "mount", "exec")
# Types worth mounting to look for a volume file; swap, LVM, RAID members, LUKS are not.
MOUNTABLE = frozenset({"ext4", "ext3", "ext2", "xfs", "btrfs", "vfat", "iso9660", "udf", "f2fs"})
# Read-only for real: no journal replay.
NO_WRITE_OPTIONS = {"ext4": "ro,noload", "ext3": "ro,noload", "xfs": "ro,norecovery"}
POLL_S = 0.25


class VolumeError(Exception):
    """A volume could not be found, probed, mounted, or its file is bad."""


@dataclass(frozen=True)
class Volume:
    path: str
    fstype: str | None = None
    label: str | None = None
    uuid: str | None = None
    rdev: int | None = None

    def describe(self) -> str:
        tags = [f"{k}={v}" for k, v in (("LABEL", self.label), ("UUID", self.uuid),
                                        ("TYPE", self.fstype)) if v]
        return f"{self.path} ({' '.join(tags)})" if tags else self.path

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.path, "fstype": self.fstype, "label": self.label,
                "uuid": self.uuid}


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    mountpoint: str
    majmin: tuple[int, int]
    fstype: str
    source: str
    options: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass
class VolumeSpec:
    """A parsed ``bootseed-volume.yaml`` and the volume that holds it."""

    action: str
    volume: Volume
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


# --- probing ---------------------------------------------------------------------------

def probe(path: str, timeout: float = 10.0) -> Volume | None:
    """The filesystem on ``path``, or None when there is none that libblkid knows."""
    tags: dict[str, str] | None
    try:
        tags = _probe_binding(path)
    except ImportError:
        tags = _probe_binary(path, timeout)
    if not tags or "TYPE" not in tags:
        return None
    try:
        rdev: int | None = os.stat(path).st_rdev
    except OSError:
        rdev = None
    return Volume(path, tags.get("TYPE"), tags.get("LABEL"), tags.get("UUID"), rdev)


def _probe_binding(path: str) -> dict[str, str] | None:
    import blkid

    pr = blkid.Probe()
    try:
        pr.set_device(path)
        pr.enable_superblocks(True)
        pr.set_superblocks_flags(blkid.SUBLKS_LABEL | blkid.SUBLKS_TYPE | blkid.SUBLKS_UUID)
        if not pr.do_safeprobe():
            return None
        return {str(k): str(v) for k, v in pr.items()}
    except OSError:
        return None


def _probe_binary(path: str, timeout: float) -> dict[str, str] | None:
    try:
        proc = subprocess.run(["blkid", "-c", "/dev/null", "-o", "export", path],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def scan(devices: Sequence[str] | None = None) -> list[Volume]:
    """Every device (default: all block devices with media) that holds a filesystem."""
    from bootseed.early.blockdev import list_block_devices

    found = []
    for path in devices if devices is not None else list_block_devices():
        volume = probe(path)
        if volume is not None:
            found.append(volume)
    return found


def matches(volume: Volume, spec: str) -> bool:
    """``LABEL=X`` (case-insensitive, as vfat labels are upper case), ``UUID=Y`` or a path."""
    kind, sep, value = spec.partition("=")
    if sep and kind.upper() == "LABEL":
        return volume.label is not None and volume.label.lower() == value.lower()
    if sep and kind.upper() == "UUID":
        return volume.uuid is not None and volume.uuid.lower() == value.lower()
    return spec.startswith("/") and os.path.realpath(spec) == os.path.realpath(volume.path)


def wait_for(spec: str, budget: Budget, devices: Sequence[str] | None = None,
             exclude: frozenset[int] = frozenset()) -> Volume:
    """The volume ``spec`` names, polling until it appears or the budget ends (disks can
    show up after udev settled, e.g. a late-attached EBS volume)."""
    while True:
        for volume in scan(devices):
            if matches(volume, spec) and volume.rdev not in exclude:
                return volume
        if not budget.sleep(POLL_S):
            raise VolumeError(f"{spec}: no such volume within {budget.seconds:g}s")


def is_blank(path: str, size: int = 1024 * 1024) -> bool:
    """No filesystem or partition table signature and the first MiB all zeros: only then
    may a volume be formatted (a volume with data is never formatted)."""
    if probe(path) is not None:
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(size)
    except OSError as exc:
        raise VolumeError(f"{path}: cannot read: {exc.strerror}") from exc
    return not head.strip(b"\0")


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


# --- mount table and mount operations --------------------------------------------------

def mount_table(mountinfo: str = "/proc/self/mountinfo") -> list[MountEntry]:
    entries = []
    for line in Path(mountinfo).read_text(encoding="utf-8", errors="replace").splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        major, _, minor = fields[2].partition(":")
        options = tuple(fields[5].split(","))
        entries.append(MountEntry(_unescape(fields[4]), (int(major), int(minor)), tail[0],
                                  _unescape(tail[1]), options))
    return entries


def mount_at(mountpoint: str, mountinfo: str = "/proc/self/mountinfo") -> MountEntry | None:
    """The topmost mount on ``mountpoint``."""
    target = os.path.realpath(mountpoint)
    found = None
    for entry in mount_table(mountinfo):
        if entry.mountpoint == target:
            found = entry
    return found


def _unescape(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def run(cmd: list[str], timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=max(timeout, 0.5), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VolumeError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip().splitlines()
        raise VolumeError(f"{' '.join(cmd)}: {reason[-1] if reason else proc.returncode}")


def mount(volume: Volume, mountpoint: str, options: str, timeout: float = 30.0) -> None:
    cmd = ["mount", "-o", options]
    if volume.fstype:
        cmd += ["-t", volume.fstype]
    run([*cmd, volume.path, mountpoint], timeout)


def umount(mountpoint: str, timeout: float = 30.0) -> None:
    try:
        run(["umount", mountpoint], timeout)
    except VolumeError:
        # Busy: detach lazily so the boot goes on; the kernel finishes later.
        run(["umount", "-l", mountpoint], timeout)


def remount(mountpoint: str, options: str, timeout: float = 30.0) -> None:
    """``options`` (``ro``/``rw``) on a mounted filesystem. Source and mount point both:
    klibc's mount (the initramfs's, without busybox) has no one-argument form."""
    entry = mount_at(mountpoint)
    if entry is None:
        raise VolumeError(f"remount {mountpoint}: nothing mounted there")
    run(["mount", "-o", f"remount,{options}", entry.source, mountpoint], timeout)


def move(source: str, target: str, timeout: float = 10.0) -> None:
    # "-o move", not "--move": the spelling klibc and busybox mount both take (as initramfs
    # init itself uses).
    run(["mount", "-o", "move", source, target], timeout)


@contextmanager
def mounted_readonly(volume: Volume, timeout: float, base: str = "/run") -> Iterator[Path]:
    """``volume`` mounted read-only without journal replay on a private temp dir."""
    import tempfile

    mountpoint = Path(tempfile.mkdtemp(prefix="bootseed-vol-",
                                       dir=base if os.access(base, os.W_OK) else None))
    options = NO_WRITE_OPTIONS.get(volume.fstype or "", "ro")
    try:
        mount(volume, str(mountpoint), options, timeout)
    except VolumeError:
        mountpoint.rmdir()
        raise
    try:
        yield mountpoint
    finally:
        try:
            umount(str(mountpoint), 10.0)
        finally:
            try:
                mountpoint.rmdir()
            except OSError:
                pass


# --- bootseed-volume.yaml --------------------------------------------------------------

def parse_volume_file(data: bytes, volume: Volume, where: str) -> VolumeSpec:
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


def read_volume_file(root: Path, volume: Volume) -> VolumeSpec | None:
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


def scan_volume_files(volumes: Sequence[Volume], budget: Budget,
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
            with mounted_readonly(volume, budget.cap(15.0), mount_base) as root:
                spec = read_volume_file(root, volume)
        except VolumeError as exc:
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
