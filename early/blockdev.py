"""Find block devices by filesystem label and mount them read-only for a moment.

Three ways to learn labels, best first: the libblkid binding (``blkid``
module, optional), the ``blkid`` binary, and udev's ``/dev/disk/by-label``.
All of them look at the same devices: the non-empty entries of
``/sys/class/block`` (or an explicit list, which tests use to stay on their
own loop devices).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SYS_BLOCK = "/sys/class/block"
BY_LABEL = "/dev/disk/by-label"
# Filesystems a seed disc can carry; anything else is mounted with autodetection.
SEED_FSTYPES = ("iso9660", "vfat", "udf", "ext4", "ext3", "ext2")


# How a disc's files are made visible: the kernel mount below, or (tests on a
# kernel without iso9660/vfat) something that presents the same tree.
Mounter = Callable[["BlockDevice", float], AbstractContextManager[Path]]


class BlockDevError(Exception):
    """A device could not be probed, mounted or unmounted."""


@dataclass(frozen=True)
class BlockDevice:
    path: str
    label: str | None = None
    fstype: str | None = None


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
                probe.set_superblocks_flags(blkid.SUBLKS_LABEL | blkid.SUBLKS_TYPE)
                if not probe.do_safeprobe():
                    continue
                tags = dict(probe.items())
            except OSError:
                continue  # unreadable (permissions, no medium): not a seed disc
            found.append(BlockDevice(path, tags.get("LABEL"), tags.get("TYPE")))
        return found


class BlkidBinaryFinder:
    """The ``blkid`` program (util-linux or busybox), cache bypassed."""

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
        try:
            proc = subprocess.run(
                [self.program, "-c", "/dev/null", "-o", "export", *devices],
                capture_output=True, text=True, timeout=self.timeout, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BlockDevError(f"{self.program}: {exc}") from exc
        # Exit 2 means "nothing found", not an error.
        if proc.returncode not in (0, 2):
            raise BlockDevError(f"{self.program} exited {proc.returncode}: {proc.stderr.strip()}")
        return _parse_export(proc.stdout)


def _parse_export(text: str) -> list[BlockDevice]:
    found: list[BlockDevice] = []
    seen: set[str] = set()
    for block in text.split("\n\n"):
        tags = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        path = tags.get("DEVNAME")
        if path and path not in seen:
            seen.add(path)
            found.append(BlockDevice(path, tags.get("LABEL"), tags.get("TYPE")))
    return found


class ByLabelFinder:
    """udev's by-label links; knows labels but not filesystem types."""

    name = "by-label"

    def __init__(self, directory: str = BY_LABEL) -> None:
        self.directory = directory

    def scan(self) -> list[BlockDevice]:
        try:
            entries = sorted(os.listdir(self.directory))
        except OSError:
            return []
        return [
            BlockDevice(os.path.realpath(os.path.join(self.directory, entry)),
                        _unescape_udev(entry))
            for entry in entries
        ]


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
    return ByLabelFinder()


def with_labels(devices: Iterable[BlockDevice], labels: Iterable[str]) -> list[BlockDevice]:
    """Devices whose label is one of ``labels``, ignoring case (vfat labels are
    upper case, ISO ones usually lower)."""
    wanted = {label.lower() for label in labels}
    return [dev for dev in devices if dev.label is not None and dev.label.lower() in wanted]


def _mount_base() -> str | None:
    # /run is a tmpfs in the initramfs and on the real root; /tmp may not exist early.
    return "/run" if os.access("/run", os.W_OK) else None


@contextmanager
def mounted(device: BlockDevice, timeout: float = 15.0) -> Iterator[Path]:
    """Mount ``device`` read-only on a private (0700) temp dir; always unmount."""
    import tempfile  # only when there is a disc: it pulls in random and hashlib

    mountpoint = Path(tempfile.mkdtemp(prefix="bootseed-mnt-", dir=_mount_base()))
    cmd = ["mount", "-o", "ro"]
    if device.fstype in SEED_FSTYPES:
        cmd += ["-t", device.fstype]
    try:
        _run([*cmd, device.path, str(mountpoint)], timeout)
    except BlockDevError:
        mountpoint.rmdir()
        raise
    try:
        yield mountpoint
    finally:
        try:
            _run(["umount", str(mountpoint)], timeout)
        except BlockDevError:
            # Busy or hung: detach lazily so the boot goes on; the kernel finishes later.
            _run(["umount", "-l", str(mountpoint)], timeout)
        mountpoint.rmdir()


def _run(cmd: list[str], timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BlockDevError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}"
        raise BlockDevError(f"{' '.join(cmd)}: {reason}")
