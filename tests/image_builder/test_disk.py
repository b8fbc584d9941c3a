import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from bootseed.image_builder import disk, grub


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10G", 10 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("4096", 4096),
     ("64k", 65536)],
)
def test_parse_size(text, expected):
    assert disk.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "5X", "-1G"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="not a size"):
        disk.parse_size(text)


def test_layout_default_ten_gib():
    layout = disk.DiskLayout(root_bytes=10 * disk.GIB)
    assert layout.root_start == 4096
    assert layout.root_offset == 4096 * 512
    assert layout.total_bytes >= layout.root_offset + 10 * disk.GIB + 33 * 512
    assert layout.total_bytes % disk.MIB == 0
    with pytest.raises(disk.DiskError):
        disk.DiskLayout(root_bytes=disk.MIB + 1)


def _small_disk(tmp_path: Path) -> tuple[Path, disk.DiskLayout]:
    tree = tmp_path / "tree"
    (tree / "boot/grub").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc/hello").write_text("hello from the tree\n")
    (tree / "boot/grub/grubenv").write_bytes(grub.grubenv_block({"bootseed_lab_args": ""}))
    layout = disk.DiskLayout(root_bytes=32 * disk.MIB)
    image = tmp_path / "disk.raw"
    disk.write_partition_table(image, layout)
    disk.make_root_filesystem(image, layout, tree, "test-root")
    return image, layout


def test_partitioned_disk_with_ext4_root(tmp_path: Path):
    image, layout = _small_disk(tmp_path)
    assert image.stat().st_size == layout.total_bytes
    table = subprocess.run(["sgdisk", "-p", str(image)], capture_output=True, text=True,
                           check=True).stdout
    assert "EF02" in table and "8300" in table and disk.ROOT_PARTITION_NAME in table
    # Sparse: far less allocated than the apparent size would be for a real image.
    assert disk.allocated_bytes(image) < image.stat().st_size
    label = subprocess.run(["blkid", "-p", "-O", str(layout.root_offset), "-s", "LABEL",
                            "-o", "value", str(image)], capture_output=True, text=True)
    assert label.stdout.strip() == "test-root"
    assert disk.read_fs_text(image, layout.root_offset, "/etc/hello") == "hello from the tree\n"
    assert disk.fs_uuid(image, layout.root_offset)


def test_file_disk_offset_points_at_the_file_bytes(tmp_path: Path):
    image, layout = _small_disk(tmp_path)
    offset = disk.file_disk_offset(image, layout.root_offset, "/boot/grub/grubenv")
    with open(image, "rb") as handle:
        handle.seek(offset)
        assert handle.read(1024) == grub.grubenv_block({"bootseed_lab_args": ""})
    with pytest.raises(disk.DiskError):
        disk.file_disk_offset(image, layout.root_offset + 512, "/boot/grub/grubenv")


def test_sparse_sha256_matches_a_full_read(tmp_path: Path):
    path = tmp_path / "sparse"
    with open(path, "wb") as handle:
        handle.truncate(9 * disk.MIB + 123)
        handle.seek(3 * disk.MIB + 7)
        handle.write(os.urandom(5000))
        handle.seek(9 * disk.MIB)
        handle.write(b"tail")
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert disk.sha256_file(path, chunk=disk.MIB) == expected
    empty = tmp_path / "hole-only"
    empty.write_bytes(b"")
    os.truncate(empty, 2 * disk.MIB)
    assert disk.sha256_file(empty) == hashlib.sha256(bytes(2 * disk.MIB)).hexdigest()
