"""``growpart`` and ``resizefs`` on a real loop device: a 64 MiB GPT image with a 32 MiB
ext4 partition, mounted, then the image file enlarged to 128 MiB (as a cloud enlarges a
disk) and grown with the host's growpart and resize2fs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late import execute
from bootseed.late.modules import growpart, resizefs
from bootseed.late.modules.base import ModuleContext
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx

MiB = 1024 * 1024
TOOLS = ("losetup", "sgdisk", "mkfs.ext4", "growpart", "resize2fs", "mount", "umount")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control")
                       or not all(shutil.which(t) for t in TOOLS),
                       reason="needs root, loop devices, sgdisk, growpart (cloud-guest-utils)"),
]


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class Disk:
    image: Path
    loop: str
    mnt: Path

    @property
    def part_name(self) -> str:
        return f"{Path(self.loop).name}p1"

    def part_sectors(self) -> int:
        return int(Path(f"/sys/class/block/{self.part_name}/size").read_text())

    def fs_bytes(self) -> int:
        st = os.statvfs(self.mnt)
        return st.f_blocks * st.f_frsize

    def enlarge(self, size: int) -> None:
        os.truncate(self.image, size)
        sh("losetup", "-c", self.loop)  # the loop device picks up the new size


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    image = tmp_path / "disk.img"
    image.write_bytes(b"")
    os.truncate(image, 64 * MiB)
    sh("sgdisk", "-n", "1:2048:+32M", "-t", "1:8300", str(image))
    loop = sh("losetup", "-f", "--show", "-P", str(image))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        if not os.path.exists(f"{loop}p1"):
            # -P's partition scan does not always show up here (no udev); ask again.
            sh("partx", "-a", loop)
        sh("mkfs.ext4", "-q", f"{loop}p1")
        sh("mount", f"{loop}p1", str(mnt))
        try:
            (mnt / "before.txt").write_text("written before growing\n")
            yield Disk(image, loop, mnt)
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def host_ctx(cfg: dict[str, Any], tmp: Path) -> ModuleContext:
    """A context whose target is the host (the loop device's mount point is a host
    path), with its instance directory under ``tmp``."""
    ctx = make_ctx(TargetRoot(tmp / "state"), cfg, name="growpart")
    ctx.target = TargetRoot(Path("/"))
    return ctx


def online_resize_allowed() -> bool:
    """Growing a mounted ext4 needs CAP_SYS_RESOURCE, which some sandboxes drop."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def test_grow_partition_keeps_data_then_nochange(disk: Disk) -> None:
    host = TargetRoot(Path("/"))
    sectors, fs_size = disk.part_sectors(), disk.fs_bytes()
    disk.enlarge(128 * MiB)
    result = growpart.grow(host, shutil.which("growpart") or "", str(disk.mnt))
    assert result.outcome is growpart.Outcome.GROWN, result.detail
    assert disk.part_sectors() > sectors * 3  # 32 MiB -> nearly 128 MiB
    assert disk.fs_bytes() == fs_size  # the filesystem is resizefs's job
    assert (disk.mnt / "before.txt").read_text() == "written before growing\n"
    again = growpart.grow(host, shutil.which("growpart") or "", str(disk.mnt))
    assert again.outcome is growpart.Outcome.NOCHANGE, again.detail
    # Decided from sysfs without running growpart: only the GPT's backup table is left.
    assert "bytes after it" in again.detail, again.detail
    assert disk.part_sectors() > sectors * 3


@pytest.mark.skipif(not online_resize_allowed(), reason="no CAP_SYS_RESOURCE here")
def test_resize_grows_the_mounted_filesystem(disk: Disk) -> None:
    host = TargetRoot(Path("/"))
    fs_size = disk.fs_bytes()
    disk.enlarge(128 * MiB)
    growpart.grow(host, shutil.which("growpart") or "", str(disk.mnt))
    resizefs.resize(host, str(disk.mnt))
    assert disk.fs_bytes() > fs_size * 3
    assert (disk.mnt / "before.txt").read_text() == "written before growing\n"
    grown = disk.fs_bytes()
    resizefs.resize(host, str(disk.mnt))  # nothing left to grow: not an error
    assert disk.fs_bytes() == grown


@pytest.mark.skipif(online_resize_allowed(), reason="online resize works here")
def test_a_failed_resize_is_reported_and_changes_nothing(disk: Disk) -> None:
    host = TargetRoot(Path("/"))
    fs_size = disk.fs_bytes()
    disk.enlarge(128 * MiB)
    growpart.grow(host, shutil.which("growpart") or "", str(disk.mnt))
    with pytest.raises(RuntimeError, match=r"resize2fs /dev/loop[0-9]+p1 exited with status"):
        resizefs.resize(host, str(disk.mnt))
    assert disk.fs_bytes() == fs_size
    assert (disk.mnt / "before.txt").read_text() == "written before growing\n"


def test_noblock_resize_runs_detached_with_its_output_logged(disk: Disk,
                                                             tmp_path: Path) -> None:
    host = TargetRoot(Path("/"))
    log = tmp_path / "resize.log"
    argv = resizefs.prepared(host, str(disk.mnt))
    assert argv[1:] == [f"{disk.loop}p1"] and argv[0].endswith("/resize2fs")
    pid = execute.start_detached(host, argv, str(log))
    _, status = os.waitpid(pid, 0)
    # the tool itself ran (its version banner), not just bootseed's header line
    assert re.search(r"^resize2fs \d+\.\d+", log.read_text(), re.MULTILINE)
    if online_resize_allowed():
        assert os.waitstatus_to_exitcode(status) == 0


def test_handle_grows_named_devices_and_mode_off_does_not(disk: Disk, tmp_path: Path) -> None:
    sectors = disk.part_sectors()
    disk.enlarge(128 * MiB)
    for cfg in ({"mode": "off", "devices": [str(disk.mnt)]},
                {"mode": False, "devices": [str(disk.mnt)]}):
        ctx = host_ctx({"growpart": cfg}, tmp_path)
        growpart.handle(ctx)
        assert disk.part_sectors() == sectors
    ctx = host_ctx({"growpart": {
        "mode": "growpart", "devices": [str(disk.mnt), "/dev/nonexistent-disk"]}}, tmp_path)
    growpart.handle(ctx)
    assert disk.part_sectors() > sectors * 3
    levels = {(p.where, p.level) for p in ctx.problems}
    assert levels == {(f"growpart.devices: {disk.mnt}", Level.NOTE),
                      ("growpart.devices: /dev/nonexistent-disk", Level.WARNING)}


def test_growroot_disabled_in_the_target_stops_it(disk: Disk, tmp_path: Path) -> None:
    """The mounted image is the target; it has no growpart command, so getting past the
    flag would make ``mode: growpart`` fail."""
    (disk.mnt / "etc").mkdir()
    (disk.mnt / "etc/growroot-disabled").write_text("")
    disk.enlarge(128 * MiB)
    sectors = disk.part_sectors()
    target = TargetRoot(disk.mnt)
    ctx = make_ctx(target, {"growpart": {"mode": "growpart"}})
    growpart.handle(ctx)
    assert disk.part_sectors() == sectors and ctx.problems == []
    ctx = make_ctx(target, {"growpart": {"mode": "growpart", "ignore_growroot_disabled": True}})
    with pytest.raises(RuntimeError, match="no growpart command"):
        growpart.handle(ctx)
    assert disk.part_sectors() == sectors


def test_a_target_directory_never_resolves_to_the_host_disk(tmp_path: Path) -> None:
    """A --root target that is a plain directory: "/" is not a filesystem of its own."""
    target = TargetRoot(tmp_path)
    result = growpart.grow(target, "/usr/bin/growpart", "/")
    assert result.outcome is growpart.Outcome.SKIPPED
    assert "not on a filesystem of the target's own" in result.detail
    with pytest.raises(resizefs.ResizeSkipped):
        resizefs.prepared(target, "/")


def test_gpart_mode_is_an_error_on_linux_unless_turned_off_first(tmp_path: Path) -> None:
    import jsonschema

    schema = {"type": "object", **growpart.MODULE.schema}
    jsonschema.validate({"growpart": {"mode": "gpart"}}, schema)
    target = TargetRoot(tmp_path)
    with pytest.raises(RuntimeError, match="mode gpart is FreeBSD's"):
        growpart.handle(make_ctx(target, {"growpart": {"mode": "gpart"}}))
    target.write(growpart.DISABLED_FLAG, "", mode=0o644)
    growpart.handle(make_ctx(target, {"growpart": {"mode": "gpart"}}))  # the flag wins
