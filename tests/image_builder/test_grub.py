import struct
from pathlib import Path

import pytest
from bootseed.image_builder import grub


def test_grubenv_block_is_1024_bytes_and_round_trips():
    block = grub.grubenv_block({grub.LAB_ARGS_VAR: "ds=nocloud;s=http://169.254.100.1/ a=b"})
    assert len(block) == grub.GRUBENV_SIZE
    assert block.startswith(grub.GRUBENV_HEADER)
    assert block.endswith(b"#")
    assert grub.parse_grubenv(block) == {
        grub.LAB_ARGS_VAR: "ds=nocloud;s=http://169.254.100.1/ a=b"
    }


@pytest.mark.parametrize("value", ["a\nb", "back\\slash"])
def test_grubenv_rejects_values_grub_would_misread(value):
    with pytest.raises(grub.GrubError, match="newline or backslash"):
        grub.grubenv_block({"x": value})


def test_grubenv_rejects_overflow_and_bad_names():
    with pytest.raises(grub.GrubError, match="do not fit"):
        grub.grubenv_block({"x": "y" * 1024})
    with pytest.raises(grub.GrubError, match="bad variable name"):
        grub.grubenv_block({"a b": "c"})


def test_boot_sector_keeps_partition_table_and_points_at_core():
    boot_img = (grub.GRUB_PC_DIR / "boot.img").read_bytes()
    mbr = bytearray(512)
    mbr[0x1B8:0x1BC] = b"SIGN"
    mbr[0x1BE:0x1CE] = bytes(range(16))
    mbr[510:512] = b"\x55\xaa"
    sector = grub.patch_boot_sector(boot_img, bytes(mbr), 2048)
    assert sector[: grub.KERNEL_SECTOR_OFFSET] == boot_img[: grub.KERNEL_SECTOR_OFFSET]
    assert struct.unpack_from("<Q", sector, grub.KERNEL_SECTOR_OFFSET)[0] == 2048
    assert sector[grub.DRIVE_CHECK_OFFSET : grub.DRIVE_CHECK_OFFSET + 2] == b"\x90\x90"
    assert sector[0x1B8:] == bytes(mbr[0x1B8:])


def test_boot_sector_needs_a_partition_table_first():
    boot_img = (grub.GRUB_PC_DIR / "boot.img").read_bytes()
    with pytest.raises(grub.GrubError, match="no MBR signature"):
        grub.patch_boot_sector(boot_img, bytes(512), 2048)


def test_core_image_blocklist(tmp_path: Path):
    core = grub.make_core_image(tmp_path / "core.img", "bootseed-root")
    sectors = (len(core) + 511) // 512
    patched = grub.patch_core_blocklist(core, 2048)
    start, count, segment = struct.unpack_from("<QHH", patched, grub.BLOCKLIST_OFFSET)
    assert (start, count, segment) == (2049, sectors - 1, 0x820)
    # Only the blocklist changes.
    assert patched[: grub.BLOCKLIST_OFFSET] == core[: grub.BLOCKLIST_OFFSET]
    assert patched[512:] == core[512:]
    # (core.img is compressed; that its embedded config finds the root by
    # label is proven by every boot of the lab.)
    assert grub.early_config("bootseed-root").startswith(
        "search --no-floppy --label --set=root bootseed-root\n")


def test_install_refuses_a_too_small_bios_partition(tmp_path: Path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(512 * 8))
    with pytest.raises(grub.GrubError, match="BIOS boot partition has 2"):
        grub.install_bios_grub(image, bytes(512 * 5), 2, 2)


def test_grub_cfg_appends_lab_args_from_the_env_block():
    cfg = grub.grub_cfg("bootseed-root", "console=ttyS0")
    assert "load_env --file $prefix/grubenv bootseed_lab_args" in cfg
    assert "root=LABEL=bootseed-root ro console=ttyS0 $bootseed_lab_args" in cfg
    assert "set timeout=0" in cfg
