"""``bootseed.late.partitions``: mount, device and partition lookup on a made-up sysfs and
mount table (the loop-device tests in tests/late/modules/test_growpart.py use the real ones)."""

from __future__ import annotations

import os
from pathlib import Path

from bootseed.late.partitions import (
    Partition,
    mount_holding,
    mounted,
    own_mount,
    partition_of,
    room_after,
)

MOUNTINFO = """\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/root rw
23 22 0:21 / /proc rw - proc proc rw
30 22 252:16 / /srv rw - xfs /dev/vdb rw
31 30 0:40 / /srv/tmp rw - tmpfs tmpfs rw
40 22 0:45 / /mnt/img rw - btrfs /dev/vdc2 rw
41 22 259:3 / /mnt/over rw - ext4 /dev/nvme0n1p3 rw
42 41 259:4 / /mnt/over rw - ext4 /dev/nvme0n1p4 rw
"""


def fake_sys(root: Path) -> Path:
    """A sysfs with disk vda (partition vda1), disk vdb, disk vdc (vdc2), nvme0n1p3/p4."""
    sys = root / "sys"
    devices = sys / "devices"
    layout = {"vda": ["vda1"], "vdb": [], "vdc": ["vdc2"], "nvme0n1": ["nvme0n1p3", "nvme0n1p4"]}
    numbers = {"252:0": "vda", "252:1": "vda1", "252:16": "vdb", "252:34": "vdc2",
               "259:3": "nvme0n1p3", "259:4": "nvme0n1p4"}
    (sys / "class" / "block").mkdir(parents=True)
    (sys / "dev" / "block").mkdir(parents=True)
    where = {}
    for disk, parts in layout.items():
        disk_dir = devices / disk
        disk_dir.mkdir(parents=True)
        where[disk] = disk_dir
        for part in parts:
            (disk_dir / part).mkdir()
            (disk_dir / part / "partition").write_text(part[-1] + "\n")
            where[part] = disk_dir / part
    for name, path in where.items():
        os.symlink(path, sys / "class" / "block" / name)
    for number, name in numbers.items():
        os.symlink(where[name], sys / "dev" / "block" / number)
    return sys


def test_mount_holding_takes_the_deepest_and_topmost_mount(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert mount_holding("/etc/hosts", str(info)).mountpoint == "/"  # type: ignore[union-attr]
    assert mount_holding("/srv/a/b", str(info)).mountpoint == "/srv"  # type: ignore[union-attr]
    assert mount_holding("/srv/tmp", str(info)).fstype == "tmpfs"  # type: ignore[union-attr]
    assert mount_holding("/srvx", str(info)).mountpoint == "/"  # type: ignore[union-attr]
    # two mounts on one point: the later one is on top
    top = mount_holding("/mnt/over/f", str(info))
    assert top is not None and top.source == "/dev/nvme0n1p4"


def test_device_by_number_source_and_none(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    sys = str(fake_sys(tmp_path))
    # /dev/root is named by its device number
    root = mounted("/", str(info), sys)
    assert root is not None and (root.device, root.fstype) == ("vda1", "ext4")
    assert mounted("/srv/x", str(info), sys).device == "vdb"  # type: ignore[union-attr]
    assert mounted("/srv/tmp", str(info), sys).device is None  # type: ignore[union-attr]
    # btrfs: an anonymous device number; the mount source names the device
    assert mounted("/mnt/img", str(info), sys).device == "vdc2"  # type: ignore[union-attr]


def test_partition_of(tmp_path: Path) -> None:
    sys = str(fake_sys(tmp_path))
    assert partition_of("vda1", sys) == Partition("vda1", "vda", 1)
    part = partition_of("nvme0n1p3", sys)
    assert part == Partition("nvme0n1p3", "nvme0n1", 3)
    assert part.node == "/dev/nvme0n1p3" and part.disk_node == "/dev/nvme0n1"
    assert partition_of("vdb", sys) is None  # a whole disk
    assert partition_of("sdz9", sys) is None  # unknown
    assert partition_of("../vda1", sys) is None


def test_own_mount_refuses_a_filesystem_above_the_target(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    sys = str(fake_sys(tmp_path))
    # a target that is a plain directory on / must not resolve to the host's root disk
    assert own_mount(Path("/srvdata/target"), "/srvdata/target", str(info), sys) is None
    assert own_mount(Path("/srv"), "/srv", str(info), sys).device == "vdb"  # type: ignore[union-attr]
    assert own_mount(Path("/"), "/srv/x", str(info), sys).device == "vdb"  # type: ignore[union-attr]


def test_room_after_a_partition_is_up_to_the_next_one_or_the_disk_end(tmp_path: Path) -> None:
    sys = fake_sys(tmp_path)
    block = sys / "class" / "block"
    (block / "nvme0n1" / "size").write_text("20480\n")  # 10 MiB in 512-byte units
    for name, start, size in (("nvme0n1p3", 2048, 4096), ("nvme0n1p4", 8192, 12255)):
        (block / name / "start").write_text(f"{start}\n")
        (block / name / "size").write_text(f"{size}\n")
    p3, p4 = partition_of("nvme0n1p3", str(sys)), partition_of("nvme0n1p4", str(sys))
    assert p3 is not None and p4 is not None
    assert room_after(p3, str(sys)) == (8192 - 6144) * 512  # the gap before p4
    assert room_after(p4, str(sys)) == 33 * 512  # a GPT backup table to the disk's end
    (block / "nvme0n1" / "size").write_text("4000000\n")  # the cloud grew the disk
    assert room_after(p4, str(sys)) == (4000000 - 20447) * 512
    assert room_after(partition_of("vda1", str(sys)) or p3, str(sys)) is None  # no figures
