"""GRUB for BIOS on an image file, without loop devices or grub-install.

What ``grub-install`` + ``grub-bios-setup`` would do to a device, done on
bytes:

* ``core.img`` is made with ``grub-mkimage -O i386-pc`` holding the modules
  needed to find the root filesystem by its label, and an embedded early
  config that sets ``$root``/``$prefix`` from that label. Finding the root by
  label (not by ``hd0``) keeps it bootable when the lab adds disks.
* core.img goes into the GPT BIOS boot partition. Its first sector
  (diskboot) ends with a blocklist telling it where the rest is: start LBA
  (u64), sector count (u16) and load segment (u16) at 0x1F4/0x1FC/0x1FE.
* ``boot.img`` goes into the MBR's first 440 bytes (the disk signature and the
  protective partition table after them stay), with the LBA of core.img at
  0x5C and the "boot drive check" jump at 0x66 replaced by two NOPs, as
  grub-bios-setup does for hard disks (some BIOSes pass a wrong drive number).

For UEFI the same early config goes into a standalone EFI application made
with ``grub-mkimage -O x86_64-efi`` and written as ``EFI/BOOT/BOOTX64.EFI``
(the removable-media path every UEFI firmware tries without boot entries in
its NVRAM) on the EFI system partition. Both set ``$prefix`` to the root's
``/boot/grub``, so BIOS and UEFI boots read the same ``grub.cfg`` and the same
``grubenv`` (boot counting and the lab's arguments work alike on both).

The GRUB environment block (``/boot/grub/grubenv``) is how the boot lab adds
kernel arguments per boot: ``grub.cfg`` loads only ``bootseed_lab_args`` from
it, and :func:`grubenv_block` makes the 1024-byte block the lab writes over
the file's sectors in a per-boot overlay.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bootseed.image_builder.procrun import run

GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")
GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")
EFI_BOOT_PATH = "EFI/BOOT/BOOTX64.EFI"
SECTOR = 512
MBR_CODE_END = 0x1B8
KERNEL_SECTOR_OFFSET = 0x5C
DRIVE_CHECK_OFFSET = 0x66
BLOCKLIST_OFFSET = SECTOR - 12
# core.img is loaded at 0x8000 by boot.img; diskboot loads the rest right
# after its own sector: segment 0x800 + 512/16.
CORE_REST_SEGMENT = 0x820
GRUBENV_SIZE = 1024
GRUBENV_HEADER = b"# GRUB Environment Block\n"
LAB_ARGS_VAR = "bootseed_lab_args"

CORE_MODULES: tuple[str, ...] = (
    "biosdisk",
    "part_gpt",
    "part_msdos",
    "ext2",
    "search",
    "search_label",
    "configfile",
    "normal",
    "linux",
    "loadenv",
    "test",
    "echo",
    "serial",
    "terminal",
)


# The firmware-independent modules, and each platform's disk access on top.
EFI_CORE_MODULES: tuple[str, ...] = (
    *(m for m in CORE_MODULES if m != "biosdisk"),
    "efi_gop",
)


class GrubError(Exception):
    """GRUB could not be placed on the image."""


def early_config(root_label: str) -> str:
    return (
        f"search --no-floppy --label --set=root {root_label}\n"
        "set prefix=($root)/boot/grub\n"
    )


def _mkimage(out: Path, target: str, grub_dir: Path, modules: Sequence[str], root_label: str,
             log: IO[str] | None) -> None:
    """``grub-mkimage -O target`` with the early config that finds the root by its label."""
    with tempfile.TemporaryDirectory(prefix="bootseed-grub-") as tmp:
        cfg = Path(tmp) / "early.cfg"
        cfg.write_text(early_config(root_label))
        run(["grub-mkimage", "-O", target, "-d", str(grub_dir), "-c", str(cfg),
             "-p", "/boot/grub", "-o", str(out), *modules], log=log)


def make_core_image(
    out: Path, root_label: str, grub_dir: Path = GRUB_PC_DIR, log: IO[str] | None = None
) -> bytes:
    """Build core.img into ``out`` and return its bytes."""
    _mkimage(out, "i386-pc", grub_dir, CORE_MODULES, root_label, log)
    return out.read_bytes()


def make_efi_image(
    out: Path, root_label: str, grub_dir: Path = GRUB_EFI_DIR, log: IO[str] | None = None
) -> Path:
    """Build GRUB's EFI application (BOOTX64.EFI) into ``out``."""
    _mkimage(out, "x86_64-efi", grub_dir, EFI_CORE_MODULES, root_label, log)
    return out


def patch_core_blocklist(core: bytes, core_lba: int) -> bytes:
    """Point diskboot's blocklist at the sectors following core.img's first one."""
    if len(core) < 2 * SECTOR:
        raise GrubError(f"core.img is only {len(core)} bytes")
    sectors = (len(core) + SECTOR - 1) // SECTOR
    if sectors - 1 > 0xFFFF:
        raise GrubError(f"core.img has {sectors} sectors; the blocklist holds at most 65535")
    patched = bytearray(core)
    struct.pack_into("<QHH", patched, BLOCKLIST_OFFSET, core_lba + 1, sectors - 1,
                     CORE_REST_SEGMENT)
    return bytes(patched)


def patch_boot_sector(boot_img: bytes, current_mbr: bytes, core_lba: int) -> bytes:
    """The MBR to write: boot.img's code, the current disk signature and table."""
    if len(boot_img) != SECTOR or len(current_mbr) != SECTOR:
        raise GrubError("boot.img and the MBR must be exactly one sector each")
    if current_mbr[510:512] != b"\x55\xaa":
        raise GrubError("the disk has no MBR signature: write the partition table first")
    sector = bytearray(boot_img[:MBR_CODE_END] + current_mbr[MBR_CODE_END:])
    struct.pack_into("<Q", sector, KERNEL_SECTOR_OFFSET, core_lba)
    sector[DRIVE_CHECK_OFFSET : DRIVE_CHECK_OFFSET + 2] = b"\x90\x90"
    return bytes(sector)


def install_bios_grub(
    image: Path,
    core: bytes,
    bios_partition_lba: int,
    bios_partition_sectors: int,
    grub_dir: Path = GRUB_PC_DIR,
) -> None:
    """Write core.img into the BIOS boot partition and boot.img into the MBR."""
    needed = (len(core) + SECTOR - 1) // SECTOR
    if needed > bios_partition_sectors:
        raise GrubError(
            f"core.img needs {needed} sectors; the BIOS boot partition has "
            f"{bios_partition_sectors}"
        )
    boot_img = (grub_dir / "boot.img").read_bytes()
    with open(image, "r+b") as disk:
        mbr = disk.read(SECTOR)
        disk.seek(bios_partition_lba * SECTOR)
        disk.write(patch_core_blocklist(core, bios_partition_lba))
        disk.seek(0)
        disk.write(patch_boot_sector(boot_img, mbr, bios_partition_lba))


_BIOS_TERMINAL = """\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
"""
# Under UEFI the firmware's console is usually redirected to the serial port
# already: GRUB writing to both would print every line twice there. GRUB drives
# the port itself and leaves the firmware console alone.
_EFI_AWARE_TERMINAL = """\
serial --unit=0 --speed=115200
if [ "$grub_platform" = efi ]; then
  terminal_input serial
  terminal_output serial
else
  terminal_input serial console
  terminal_output serial console
fi
"""


def grub_cfg(root_label: str, base_args: str, menu_title: str = "Debian GNU/Linux",
             firmware: str = "bios") -> str:
    """The image's grub.cfg: boot /vmlinuz at once, with per-boot lab arguments.

    ``/vmlinuz`` and ``/initrd.img`` are the symlinks Debian keeps pointing at
    the newest kernel, so a kernel upgrade inside the guest stays bootable.
    """
    terminal = _BIOS_TERMINAL if firmware == "bios" else _EFI_AWARE_TERMINAL
    return f"""\
# Written by bootseed-image; regenerate the image rather than editing it.
{terminal}set timeout=0
set default=0
set {LAB_ARGS_VAR}=""
if [ -s $prefix/grubenv ]; then
  load_env --file $prefix/grubenv {LAB_ARGS_VAR}
fi
menuentry '{menu_title}' {{
  search --no-floppy --label --set=root {root_label}
  linux /vmlinuz root=LABEL={root_label} ro {base_args} ${LAB_ARGS_VAR}
  initrd /initrd.img
}}
"""


def grubenv_block(values: dict[str, str]) -> bytes:
    """A GRUB environment block (exactly 1024 bytes) holding ``values``."""
    body = bytearray(GRUBENV_HEADER)
    for name, value in values.items():
        if not name.replace("_", "").isalnum():
            raise GrubError(f"grubenv: bad variable name {name!r}")
        if any(ch in value for ch in "\n\\"):
            raise GrubError(f"grubenv: {name} may not contain a newline or backslash")
        body += f"{name}={value}\n".encode()
    if len(body) > GRUBENV_SIZE:
        raise GrubError(
            f"grubenv: {len(body)} bytes of variables do not fit the {GRUBENV_SIZE}-byte block"
        )
    return bytes(body) + b"#" * (GRUBENV_SIZE - len(body))


def parse_grubenv(block: bytes) -> dict[str, str]:
    """Read the variables back from an environment block (for checks and tests)."""
    if not block.startswith(GRUBENV_HEADER):
        raise GrubError("not a GRUB environment block")
    values: dict[str, str] = {}
    for line in block[len(GRUBENV_HEADER) :].decode("utf-8", "replace").split("\n"):
        if line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name] = value
    return values
