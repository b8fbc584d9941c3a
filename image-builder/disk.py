"""The partitioned raw disk: GPT, a BIOS boot and/or EFI system partition, an ext4 root.

Layout of a BIOS image (512-byte sectors)::

    0            protective MBR (boot.img goes here)
    1..33        GPT header and entries
    2048..4095   partition 1: BIOS boot (type EF02), holds GRUB's core.img
    4096..       partition 2: the ext4 root, labelled, ``root_bytes`` long
    last 33      backup GPT

The firmware (``--firmware``) decides which boot partitions there are: ``bios``
as above; ``uefi`` an EFI system partition (type EF00, FAT, 64 MiB) where the
BIOS boot partition was; ``both`` the BIOS boot partition, then the ESP, then
the root, so one disk boots on either firmware. The root is always last.

The file is sparse: only written blocks take space. The root filesystem is
made and filled in one go with ``mkfs.ext4 -d TREE -E offset=...`` straight
into the disk file, so neither loop devices nor mounts are needed.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bootseed.image_builder.manifest import FIRMWARES
from bootseed.image_builder.procrun import CommandFailed, run

SECTOR = 512
MIB = 1024 * 1024
GIB = 1024 * MIB
BIOS_BOOT_TYPE = "EF02"
EFI_SYSTEM_TYPE = "EF00"
ESP_BYTES = 64 * MIB
LINUX_FS_TYPE = "8300"
ROOT_PARTITION_NAME = "bootseed-root"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)


class DiskError(Exception):
    """The disk image could not be laid out or read."""


def parse_size(text: str) -> int:
    """``"10G"``, ``"512M"``, ``"1.5GiB"``, ``"4096"`` -> bytes (powers of 1024)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 512M, 10G)")
    number, unit = float(match.group(1)), match.group(2).upper()
    factor = {"": 1, "K": 1024, "M": MIB, "G": GIB, "T": 1024 * GIB}[unit]
    return int(number * factor)


@dataclass(frozen=True)
class DiskLayout:
    root_bytes: int
    bios_start: int = 2048
    bios_sectors: int = 2048
    gpt_tail_sectors: int = 34
    firmware: str = "bios"
    esp_bytes: int = ESP_BYTES

    def __post_init__(self) -> None:
        if self.root_bytes % MIB:
            raise DiskError(f"root size {self.root_bytes} is not a whole number of MiB")
        if self.firmware not in FIRMWARES:
            raise DiskError(f"unknown firmware {self.firmware!r} (choose from "
                            f"{', '.join(FIRMWARES)})")
        if self.esp_bytes % MIB:
            raise DiskError(f"ESP size {self.esp_bytes} is not a whole number of MiB")

    @property
    def has_bios_boot(self) -> bool:
        return self.firmware in ("bios", "both")

    @property
    def has_esp(self) -> bool:
        return self.firmware in ("uefi", "both")

    @property
    def esp_start(self) -> int:
        return self.bios_start + (self.bios_sectors if self.has_bios_boot else 0)

    @property
    def esp_sectors(self) -> int:
        return self.esp_bytes // SECTOR if self.has_esp else 0

    @property
    def root_start(self) -> int:
        return self.esp_start + self.esp_sectors

    @property
    def root_sectors(self) -> int:
        return self.root_bytes // SECTOR

    @property
    def root_offset(self) -> int:
        return self.root_start * SECTOR

    @property
    def total_bytes(self) -> int:
        # Round the end up to a MiB so the backup GPT has its own tail.
        end = (self.root_start + self.root_sectors + self.gpt_tail_sectors) * SECTOR
        return (end + MIB - 1) // MIB * MIB


def write_partition_table(image: Path, layout: DiskLayout, log: IO[str] | None = None) -> None:
    """Create the sparse file and its GPT (with a protective MBR)."""
    with open(image, "wb") as handle:
        handle.truncate(layout.total_bytes)
    parts: list[tuple[int, int, str, str]] = []  # start, sectors, type, name
    if layout.has_bios_boot:
        parts.append((layout.bios_start, layout.bios_sectors, BIOS_BOOT_TYPE, "bios-boot"))
    if layout.has_esp:
        parts.append((layout.esp_start, layout.esp_sectors, EFI_SYSTEM_TYPE, "efi-system"))
    parts.append((layout.root_start, layout.root_sectors, LINUX_FS_TYPE, ROOT_PARTITION_NAME))
    argv = ["sgdisk", "--clear"]
    for number, (start, sectors, typecode, name) in enumerate(parts, start=1):
        argv += [f"--new={number}:{start}:{start + sectors - 1}",
                 f"--typecode={number}:{typecode}", f"--change-name={number}:{name}"]
    run([*argv, str(image)], log=log)


def write_esp(image: Path, layout: DiskLayout, files: dict[str, Path], work: Path,
              log: IO[str] | None = None) -> None:
    """A FAT EFI system partition holding ``files`` (path on the ESP -> host file).

    Made as its own file with mkfs.vfat and filled with mtools (no mount, no
    loop device), then copied into its partition; all-zero MiBs are skipped so
    the image stays sparse.
    """
    if not layout.has_esp:
        raise DiskError(f"a {layout.firmware} layout has no EFI system partition")
    esp = work / "esp.img"
    with open(esp, "wb") as handle:
        handle.truncate(layout.esp_bytes)
    run(["mkfs.vfat", "-n", "EFI", str(esp)], log=log)
    made: set[str] = set()
    for target, source in sorted(files.items()):
        parts = target.strip("/").split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in made:
                run(["mmd", "-i", str(esp), f"::/{folder}"], log=log)
                made.add(folder)
        run(["mcopy", "-i", str(esp), str(source), f"::/{'/'.join(parts)}"], log=log)
    zeros = bytes(MIB)
    with open(esp, "rb") as src, open(image, "r+b") as dst:
        for offset in range(0, layout.esp_bytes, MIB):
            chunk = src.read(MIB)
            if chunk != zeros:
                dst.seek(layout.esp_start * SECTOR + offset)
                dst.write(chunk)
    esp.unlink()


def make_root_filesystem(
    image: Path, layout: DiskLayout, tree: Path, label: str, log: IO[str] | None = None
) -> None:
    """mkfs.ext4 the root partition inside ``image`` and copy ``tree`` into it."""
    run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            label,
            "-E",
            f"offset={layout.root_offset}",
            "-d",
            str(tree),
            str(image),
            f"{layout.root_bytes // 1024}k",
        ],
        log=log,
        timeout=1800,
    )


def _debugfs(image: Path, fs_offset: int, request: str) -> str:
    # "?offset=" is e2fsprogs' io option: debugfs reads the filesystem at that
    # byte offset inside the disk file, no partition device needed.
    try:
        return run(["debugfs", "-R", request, f"{image}?offset={fs_offset}"])
    except CommandFailed as exc:
        raise DiskError(f"no readable ext4 filesystem at byte {fs_offset} of {image} "
                        f"({exc.output_tail.strip()})") from None


def file_disk_offset(image: Path, fs_offset: int, path_in_fs: str) -> int:
    """Byte offset in ``image`` of the first block of a file in the filesystem.

    Used for the GRUB environment block, which is one block long: the lab
    overwrites exactly those bytes in a per-boot overlay.
    """
    out = _debugfs(image, fs_offset, "stats")
    match = re.search(r"^Block size:\s+(\d+)", out, re.MULTILINE)
    if not match:
        raise DiskError(f"debugfs found no ext4 filesystem at offset {fs_offset} of {image}")
    block_size = int(match.group(1))
    block = _debugfs(image, fs_offset, f"bmap {path_in_fs} 0").strip().splitlines()
    if not block or not block[-1].isdigit() or int(block[-1]) == 0:
        raise DiskError(f"{path_in_fs} has no data block in {image}")
    return fs_offset + int(block[-1]) * block_size


def read_fs_text(image: Path, fs_offset: int, path_in_fs: str) -> str:
    """The content of one text file of the filesystem (debugfs ``cat``)."""
    return _debugfs(image, fs_offset, f"cat {path_in_fs}")


def fs_uuid(image: Path, fs_offset: int) -> str:
    out = _debugfs(image, fs_offset, "stats")
    match = re.search(r"^Filesystem UUID:\s+(\S+)", out, re.MULTILINE)
    return match.group(1) if match else ""


def convert_to_qcow2(raw: Path, out: Path, log: IO[str] | None = None) -> None:
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)], log=log,
        timeout=1800)


def sha256_file(path: Path, chunk: int = 4 * MIB) -> str:
    """sha256 of the whole file; holes are hashed as zeros without reading them.

    A 10 GiB sparse image holds ~0.5 GiB of data: skipping the reads of the
    holes (SEEK_DATA/SEEK_HOLE) makes this several times faster.
    """
    digest = hashlib.sha256()
    zeros = bytes(chunk)
    with open(path, "rb") as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data_start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                data_start = size
            _hash_zeros(digest, data_start - pos, zeros)
            if data_start >= size:
                break
            data_end = os.lseek(fd, data_start, os.SEEK_HOLE)
            handle.seek(data_start)
            remaining = data_end - data_start
            while remaining:
                block = handle.read(min(chunk, remaining))
                if not block:
                    raise DiskError(f"{path} shrank while being hashed")
                digest.update(block)
                remaining -= len(block)
            pos = data_end
    return digest.hexdigest()


def _hash_zeros(digest: Any, count: int, zeros: bytes) -> None:
    view = memoryview(zeros)
    while count > 0:
        step = min(count, len(zeros))
        digest.update(view[:step])
        count -= step


def allocated_bytes(path: Path) -> int:
    """Bytes the (sparse) file really occupies on disk."""
    return path.stat().st_blocks * 512
