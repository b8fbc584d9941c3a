"""Block devices for the early stage: find and identify them, read the mount table, mount.

Seed discs (``bootseed.early.discover``) and the root decisions (rescue, take-over,
overlay, volume consumption) all stand on this one layer.

Three ways to identify devices (filesystem type, label, UUID), best first: the
libblkid binding (``blkid`` module, optional), the ``blkid`` binary, and udev's
``/dev/disk/by-label`` (labels only). All of them look at the same devices: the
non-empty entries of ``/sys/class/block`` (or an explicit list, which tests use to
stay on their own loop devices).

Mounting for a look is safe by construction: read-only with journal replay turned off
(``noload`` / ``norecovery``: a read-only ext4 mount still replays a dirty journal,
i.e. writes), on a private temp dir, always unmounted. Every external program runs
through :func:`run`, with a timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bootseed.early.budget import Budget

SYS_BLOCK = "/sys/class/block"
BY_LABEL = "/dev/disk/by-label"
# Read-only for real: no journal replay.
NO_WRITE_OPTIONS = {"ext4": "ro,noload", "ext3": "ro,noload", "xfs": "ro,norecovery"}
POLL_S = 0.25


# How a disc's files are made visible: the kernel mount below, or (tests on a
# kernel without iso9660/vfat) something that presents the same tree.
Mounter = Callable[["BlockDevice", float], AbstractContextManager[Path]]


class BlockDevError(Exception):
    """A device could not be found, probed, mounted or unmounted, or a program failed."""


@dataclass(frozen=True)
class BlockDevice:
    """A device node and what the probe learnt about its filesystem (None: unknown)."""

    path: str
    label: str | None = field(default=None, kw_only=True)
    fstype: str | None = field(default=None, kw_only=True)
    uuid: str | None = field(default=None, kw_only=True)
    rdev: int | None = field(default=None, kw_only=True)

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


# --- finding and identifying devices ---------------------------------------------------

class DeviceFinder(Protocol):
    name: str

    def scan(self) -> list[BlockDevice]: ...


def list_block_devices(sys_block: str = SYS_BLOCK, dev_dir: str = "/dev") -> list[str]:
    """Device nodes of every block device with media (size > 0): disks, partitions,
    CD-ROMs with a disc, attached loop devices."""
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return []
    found = []
    for name in names:
        try:
            size = int(Path(sys_block, name, "size").read_text().strip() or "0")
        except (OSError, ValueError):
            continue
        node = os.path.join(dev_dir, name)
        if size > 0 and os.path.exists(node):
            found.append(node)
    return found


def _device(path: str, tags: dict[str, str]) -> BlockDevice:
    try:
        rdev: int | None = os.stat(path).st_rdev
    except OSError:
        rdev = None
    return BlockDevice(path, label=tags.get("LABEL"), fstype=tags.get("TYPE"),
                       uuid=tags.get("UUID"), rdev=rdev)


class BlkidBindingFinder:
    """libblkid through the ``blkid`` extension module: no process per scan."""

    name = "pylibblkid"

    def __init__(self, devices: Sequence[str] | None = None) -> None:
        import blkid  # noqa: F401  (fail here, at selection time, when it is absent)

        self.devices = devices

    def scan(self) -> list[BlockDevice]:
        import blkid

        found = []
        for path in self.devices if self.devices is not None else list_block_devices():
            probe = blkid.Probe()
            try:
                probe.set_device(path)
                probe.enable_superblocks(True)
                probe.set_superblocks_flags(
                    blkid.SUBLKS_LABEL | blkid.SUBLKS_TYPE | blkid.SUBLKS_UUID)
                if not probe.do_safeprobe():
                    continue
                tags = {str(k): str(v) for k, v in probe.items()}
            except OSError:
                continue  # unreadable (permissions, no medium): nothing to use
            found.append(_device(path, tags))
        return found


class BlkidBinaryFinder:
    """The ``blkid`` program (util-linux or busybox), cache bypassed, one run per scan."""

    name = "blkid"

    def __init__(self, devices: Sequence[str] | None = None, program: str = "blkid",
                 timeout: float = 10.0) -> None:
        path = shutil.which(program)
        if path is None:
            raise BlockDevError(f"{program}: not found")
        self.program = path
        self.devices = devices
        self.timeout = timeout

    def scan(self) -> list[BlockDevice]:
        devices = list(self.devices) if self.devices is not None else list_block_devices()
        if not devices:
            return []
        # Exit 2 means "nothing found", not an error.
        out = run([self.program, "-c", "/dev/null", "-o", "export", *devices], self.timeout,
                  ok_codes=(0, 2))
        return _parse_export(out)


def _parse_export(text: str) -> list[BlockDevice]:
    found: list[BlockDevice] = []
    seen: set[str] = set()
    for block in text.split("\n\n"):
        tags = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        path = tags.get("DEVNAME")
        if path and path not in seen:
            seen.add(path)
            found.append(_device(path, tags))
    return found


class ByLabelFinder:
    """udev's by-label links; knows labels but not filesystem types."""

    name = "by-label"

    def __init__(self, directory: str = BY_LABEL, devices: Sequence[str] | None = None) -> None:
        self.directory = directory
        self.devices = devices

    def scan(self) -> list[BlockDevice]:
        try:
            entries = sorted(os.listdir(self.directory))
        except OSError:
            return []
        found = [
            BlockDevice(os.path.realpath(os.path.join(self.directory, entry)),
                        label=_unescape_udev(entry))
            for entry in entries
        ]
        if self.devices is None:
            return found
        wanted = {os.path.realpath(path) for path in self.devices}
        return [device for device in found if device.path in wanted]


def _unescape_udev(name: str) -> str:
    r"""udev writes unsafe label characters as ``\xNN``."""
    out = bytearray()
    i = 0
    raw = name.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i : i + 2] == b"\\x" and i + 4 <= len(raw):
            try:
                out.append(int(raw[i + 2 : i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def default_finder(devices: Sequence[str] | None = None) -> DeviceFinder:
    """The best finder available here, in the documented order."""
    try:
        return BlkidBindingFinder(devices)
    except ImportError:
        pass
    try:
        return BlkidBinaryFinder(devices)
    except BlockDevError:
        pass
    return ByLabelFinder(devices=devices)


def with_labels(devices: Iterable[BlockDevice], labels: Iterable[str]) -> list[BlockDevice]:
    """Devices whose label is one of ``labels``, ignoring case (vfat labels are
    upper case, ISO ones usually lower)."""
    wanted = {label.lower() for label in labels}
    return [dev for dev in devices if dev.label is not None and dev.label.lower() in wanted]


def scan(devices: Sequence[str] | None = None) -> list[BlockDevice]:
    """Every device (default: all block devices with media) that holds a filesystem of a
    known type. A probe that fails finds nothing: what cannot be probed cannot be used."""
    try:
        found = default_finder(devices).scan()
    except BlockDevError:
        return []
    return [device for device in found if device.fstype is not None]


def probe(path: str) -> BlockDevice | None:
    """The filesystem on ``path``, or None when there is none that libblkid knows."""
    found = scan([path])
    return found[0] if found else None


def matches(device: BlockDevice, spec: str) -> bool:
    """``LABEL=X`` (case-insensitive, as vfat labels are upper case), ``UUID=Y`` or a path."""
    kind, sep, value = spec.partition("=")
    if sep and kind.upper() == "LABEL":
        return device.label is not None and device.label.lower() == value.lower()
    if sep and kind.upper() == "UUID":
        return device.uuid is not None and device.uuid.lower() == value.lower()
    return spec.startswith("/") and os.path.realpath(spec) == os.path.realpath(device.path)


def wait_for(spec: str, budget: Budget, devices: Sequence[str] | None = None,
             exclude: frozenset[int] = frozenset()) -> BlockDevice:
    """The device ``spec`` names, polling until it appears or the budget ends (disks can
    show up after udev settled, e.g. a late-attached EBS volume)."""
    while True:
        for device in scan(devices):
            if matches(device, spec) and device.rdev not in exclude:
                return device
        if not budget.sleep(POLL_S):
            raise BlockDevError(f"{spec}: no such volume within {budget.seconds:g}s")


def is_blank(path: str, size: int = 1024 * 1024) -> bool:
    """No filesystem or partition table signature and the first MiB all zeros: only then
    may a volume be formatted (a volume with data is never formatted)."""
    if probe(path) is not None:
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(size)
    except OSError as exc:
        raise BlockDevError(f"{path}: cannot read: {exc.strerror}") from exc
    return not head.strip(b"\0")


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


# --- the mount table -------------------------------------------------------------------

def mount_table(mountinfo: str = "/proc/self/mountinfo") -> list[MountEntry]:
    entries = []
    for line in Path(mountinfo).read_text(encoding="utf-8", errors="replace").splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        major, _, minor = fields[2].partition(":")
        options = tuple(fields[5].split(","))
        entries.append(MountEntry(_unescape_mountinfo(fields[4]), (int(major), int(minor)),
                                  tail[0], _unescape_mountinfo(tail[1]), options))
    return entries


def mount_at(mountpoint: str, mountinfo: str = "/proc/self/mountinfo") -> MountEntry | None:
    """The topmost mount on ``mountpoint``."""
    target = os.path.realpath(mountpoint)
    found = None
    for entry in mount_table(mountinfo):
        if entry.mountpoint == target:
            found = entry
    return found


def _unescape_mountinfo(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


# --- mounting --------------------------------------------------------------------------

def read_only_options(device: BlockDevice) -> str:
    return NO_WRITE_OPTIONS.get(device.fstype or "", "ro")


def mount(device: BlockDevice, mountpoint: str, options: str, timeout: float = 30.0) -> None:
    cmd = ["mount", "-o", options]
    if device.fstype:
        cmd += ["-t", device.fstype]
    run([*cmd, device.path, mountpoint], timeout)


def umount(mountpoint: str, timeout: float = 30.0) -> None:
    try:
        run(["umount", mountpoint], timeout)
    except BlockDevError:
        # Busy or hung: detach lazily so the boot goes on; the kernel finishes later.
        run(["umount", "-l", mountpoint], timeout)


def remount(mountpoint: str, options: str, timeout: float = 30.0) -> None:
    """``options`` (``ro``/``rw``) on a mounted filesystem. Source and mount point both:
    klibc's mount (the initramfs's, without busybox) has no one-argument form."""
    entry = mount_at(mountpoint)
    if entry is None:
        raise BlockDevError(f"remount {mountpoint}: nothing mounted there")
    run(["mount", "-o", f"remount,{options}", entry.source, mountpoint], timeout)


def move(source: str, target: str, timeout: float = 10.0) -> None:
    # "-o move", not "--move": the spelling klibc and busybox mount both take (as initramfs
    # init itself uses).
    run(["mount", "-o", "move", source, target], timeout)


@contextmanager
def mounted(device: BlockDevice, timeout: float = 15.0, base: str = "/run") -> Iterator[Path]:
    """``device`` mounted read-only without journal replay on a private (0700) temp dir
    under ``base`` (/run is a tmpfs in the initramfs and on the real root; /tmp may not
    exist early); always unmounted."""
    import tempfile  # only when there is something to mount: it pulls in random and hashlib

    mountpoint = Path(tempfile.mkdtemp(prefix="bootseed-mnt-",
                                       dir=base if os.access(base, os.W_OK) else None))
    try:
        mount(device, str(mountpoint), read_only_options(device), timeout)
    except BlockDevError:
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


# --- running programs ------------------------------------------------------------------

def run(cmd: list[str], timeout: float, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run ``cmd`` within ``timeout`` seconds; its standard output, or ``BlockDevError``
    naming the command and the last line it printed."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=max(timeout, 0.5), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BlockDevError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode not in ok_codes:
        reason = (proc.stderr or proc.stdout).strip().splitlines()
        raise BlockDevError(f"{' '.join(cmd)}: {reason[-1] if reason else proc.returncode}")
    return proc.stdout
