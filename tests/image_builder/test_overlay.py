from pathlib import Path

import pytest
from bootseed.image_builder import disk, grub, overlay


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> tuple[Path, int]:
    tmp = tmp_path_factory.mktemp("overlay")
    tree = tmp / "tree"
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "boot/grub/grubenv").write_bytes(grub.grubenv_block({grub.LAB_ARGS_VAR: ""}))
    layout = disk.DiskLayout(root_bytes=16 * disk.MIB)
    image = tmp / "base.raw"
    disk.write_partition_table(image, layout)
    disk.make_root_filesystem(image, layout, tree, "ov-root")
    return image, disk.file_disk_offset(image, layout.root_offset, "/boot/grub/grubenv")


def test_kernel_args_land_in_the_overlay_only(small_image, tmp_path: Path):
    base, offset = small_image
    before = base.read_bytes()
    ov = tmp_path / "boot.qcow2"
    overlay.create_overlay(base, "raw", ov)
    overlay.set_kernel_args(ov, offset, "bootseed.lab=1 ds=nocloud;s=http://169.254.100.1/",
                            tmp_path / "scratch")
    block = overlay.read_at(ov, "qcow2", offset, grub.GRUBENV_SIZE)
    assert grub.parse_grubenv(block) == {
        grub.LAB_ARGS_VAR: "bootseed.lab=1 ds=nocloud;s=http://169.254.100.1/"
    }
    assert base.read_bytes() == before  # the cached image stays pristine
    second = tmp_path / "second.qcow2"
    overlay.create_overlay(base, "raw", second)
    assert grub.parse_grubenv(overlay.read_at(second, "qcow2", offset, 1024)) == {
        grub.LAB_ARGS_VAR: ""
    }


def test_wrong_offset_is_refused(small_image, tmp_path: Path):
    base, offset = small_image
    ov = tmp_path / "boot.qcow2"
    overlay.create_overlay(base, "raw", ov)
    with pytest.raises(overlay.OverlayError, match="no GRUB environment block"):
        overlay.set_kernel_args(ov, offset + 4096, "x=1", tmp_path / "scratch")


def test_data_disk_has_its_label(tmp_path: Path):
    import subprocess

    path = tmp_path / "data.raw"
    overlay.make_data_disk(path, "scratch-1", "64M")
    assert path.stat().st_size == 64 * disk.MIB
    out = subprocess.run(["blkid", "-p", "-s", "LABEL", "-o", "value", str(path)],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "scratch-1"
    with pytest.raises(overlay.OverlayError, match="too small"):
        overlay.make_data_disk(tmp_path / "tiny.raw", "x", "1M")


def test_qcow2_image_works_as_overlay_base(small_image, tmp_path: Path):
    import json
    import subprocess

    base, offset = small_image
    qcow = tmp_path / "base.qcow2"
    disk.convert_to_qcow2(base, qcow)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(qcow)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == base.stat().st_size
    ov = tmp_path / "boot.qcow2"
    overlay.create_overlay(qcow, "qcow2", ov)
    overlay.set_kernel_args(ov, offset, "x=1", tmp_path / "scratch")
    assert grub.parse_grubenv(overlay.read_at(ov, "qcow2", offset, 1024)) == {
        grub.LAB_ARGS_VAR: "x=1"
    }
    assert grub.parse_grubenv(overlay.read_at(qcow, "qcow2", offset, 1024)) == {
        grub.LAB_ARGS_VAR: ""
    }


def test_other_grubenv_variables_are_kept(tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "boot/grub/grubenv").write_bytes(
        grub.grubenv_block({"boot_tries": "3", grub.LAB_ARGS_VAR: ""}))
    layout = disk.DiskLayout(root_bytes=16 * disk.MIB)
    image = tmp_path / "base.raw"
    disk.write_partition_table(image, layout)
    disk.make_root_filesystem(image, layout, tree, "ov-root")
    offset = disk.file_disk_offset(image, layout.root_offset, "/boot/grub/grubenv")
    ov = tmp_path / "boot.qcow2"
    overlay.create_overlay(image, "raw", ov)
    overlay.set_kernel_args(ov, offset, "a=1", tmp_path / "scratch")
    assert grub.parse_grubenv(overlay.read_at(ov, "qcow2", offset, 1024)) == {
        "boot_tries": "3", grub.LAB_ARGS_VAR: "a=1"
    }
