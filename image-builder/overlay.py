"""Per-boot disks: a qcow2 overlay on the cached image, with this boot's kernel args.

The cached image is never written: each boot gets a qcow2 overlay backed by
it. Kernel arguments for one boot are written into the overlay over the
sectors of ``/boot/grub/grubenv`` (a 1024-byte GRUB environment block; its
byte offset in the disk is in the build manifest, found with ``debugfs
bmap`` at build time), using ``qemu-io``. GRUB's config loads
``bootseed_lab_args`` from that block and appends it to the kernel command
line.

Why this and not a tiny extra disk GRUB searches for: the guest then sees
exactly the disks a test asked for (seed discovery scans every block device
by label, so an extra lab disk would be a stray input), and the image boots
without the lab exactly as with it, the block being empty by default.
"""

from __future__ import annotations

from pathlib import Path

from bootseed.image_builder import grub
from bootseed.image_builder.disk import parse_size
from bootseed.image_builder.procrun import run


class OverlayError(Exception):
    """The per-boot disk could not be prepared."""


def create_overlay(base: Path, base_format: str, overlay: Path) -> None:
    if overlay.exists():
        overlay.unlink()
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b",
         str(base.resolve()), str(overlay)])


def write_at(image: Path, image_format: str, offset: int, data: bytes, scratch: Path) -> None:
    """Write ``data`` at byte ``offset`` of the guest-visible disk (qemu-io)."""
    scratch.write_bytes(data)
    run(["qemu-io", "-f", image_format, "-c",
         f"write -q -s {scratch} {offset} {len(data)}", str(image)])


def read_at(image: Path, image_format: str, offset: int, length: int) -> bytes:
    """Read guest-visible bytes (``qemu-io read -v`` hex dump, parsed)."""
    out = run(["qemu-io", "-f", image_format, "-c", f"read -v {offset} {length}", str(image)])
    data = bytearray()
    for line in out.splitlines():
        head, sep, _ = line.partition(":")
        if not sep or not all(c in "0123456789abcdef" for c in head.strip()):
            continue
        hexpart = line[len(head) + 1 :].strip().split("  ")[0]
        data += bytes.fromhex(hexpart.replace(" ", ""))
    return bytes(data[:length])


def set_kernel_args(overlay: Path, grubenv_offset: int, args: str, scratch: Path) -> None:
    """Make this boot's kernel command line end with ``args``.

    The other variables of the block (e.g. the fallback boot counter armed at
    build time) are kept; only ``bootseed_lab_args`` is replaced.
    """
    current = read_at(overlay, "qcow2", grubenv_offset, grub.GRUBENV_SIZE)
    if not current.startswith(grub.GRUBENV_HEADER):
        raise OverlayError(
            f"no GRUB environment block at byte {grubenv_offset} of {overlay}: "
            "the image manifest does not match the image"
        )
    values = grub.parse_grubenv(current)
    values[grub.LAB_ARGS_VAR] = args
    write_at(overlay, "qcow2", grubenv_offset, grub.grubenv_block(values), scratch)


def make_data_disk(path: Path, label: str, size: str) -> None:
    """An extra raw disk with an ext4 filesystem labelled ``label`` (no loop device)."""
    nbytes = parse_size(size)
    if nbytes < 8 * 1024 * 1024:
        raise OverlayError(f"disk {label}: {size} is too small for ext4 (minimum 8M)")
    with open(path, "wb") as handle:
        handle.truncate(nbytes)
    run(["mkfs.ext4", "-q", "-F", "-L", label, str(path)])
