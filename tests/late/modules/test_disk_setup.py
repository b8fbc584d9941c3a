"""``disk_setup``/``fs_setup``/``device_aliases``: the key forms, and the "never destroy
data" rules on real loop devices (sparse files in tmp_path) with the host's sfdisk,
wipefs, mkfs.* and blkid."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level, Problem
from bootseed.late.disknames import DiskNames
from bootseed.late.modules import disk_setup
from bootseed.late.modules.base import InstanceInfo, ModuleContext
from bootseed.late.modules.disk_setup import (
    GPT_CODES,
    PartSpec,
    SetupError,
    parse_layout,
    sfdisk_script,
)
from bootseed.late.target import TargetRoot

from testsupport.loopdev import blkid, loop_devices, sh, unavailable
from testsupport.targetfs import make_ctx

MiB = 1024 * 1024
LINUX_GPT = GPT_CODES["8300"]
needs_loop = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")


# --- key forms, no devices -----------------------------------------------------------

def test_layout_forms() -> None:
    assert parse_layout(True, "gpt") == (PartSpec(100, LINUX_GPT),)
    assert parse_layout(True, "dos") == (PartSpec(100, "83"),)
    assert parse_layout(False, "dos") == ()
    assert parse_layout(None, "gpt") == ()
    assert parse_layout([33, [33, 82], [34, "0xfd"]], "dos") == (
        PartSpec(33, "83"), PartSpec(33, "82"), PartSpec(34, "fd"))
    assert parse_layout([[50, 8200], [50, "fd00"]], "gpt") == (
        PartSpec(50, GPT_CODES["8200"]), PartSpec(50, GPT_CODES["fd00"]))
    guid = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
    assert parse_layout([[10, guid], 90], "gpt")[0] == PartSpec(10, guid.upper())
    assert parse_layout([[20, 82]], "gpt") == (PartSpec(20, GPT_CODES["8200"]),)


@pytest.mark.parametrize(("layout", "table", "message"), [
    ([60, 50], "dos", "more than 100%"),
    ([0], "dos", "percentage"),
    ([True], "dos", "percentage"),
    ([[50, "zz9"]], "dos", "MBR hex code"),
    ([[50, "1234"]], "gpt", "not a GPT GUID"),
    ("auto", "dos", "expected true, false or a list"),
])
def test_bad_layouts_are_refused(layout: Any, table: str, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        parse_layout(layout, table)


def test_table_types() -> None:
    assert disk_setup.table_of(None) == "dos"
    assert disk_setup.table_of("mbr") == "dos"
    assert disk_setup.table_of("gpt") == "gpt"
    with pytest.raises(SetupError, match="mbr or gpt"):
        disk_setup.table_of("apm")


def test_sfdisk_script_sizes_and_the_last_partition_taking_the_rest() -> None:
    parts = parse_layout([25, [75, 82]], "dos")
    assert sfdisk_script("dos", parts, 400 * MiB) == (
        "label: dos\nsize=100MiB, type=83\ntype=82\n")
    # Not adding up to 100%: every partition sized, the rest of the disk stays free.
    assert sfdisk_script("gpt", parse_layout([50], "gpt"), 400 * MiB) == (
        f"label: gpt\nsize=200MiB, type={LINUX_GPT}\n")
    with pytest.raises(SetupError, match="less than 1 MiB"):
        sfdisk_script("dos", parse_layout([1, 99], "dos"), 50 * MiB)


def names(tmp_path: Path, disks: tuple[str, ...] = (), aliases: dict[str, str] | None = None,
          mapping: dict[str, str] | None = None) -> DiskNames:
    root = tmp_path / "root"
    for disk in disks:
        (root / "sys/class/block" / disk).mkdir(parents=True)
        (root / "dev").mkdir(exist_ok=True)
        (root / "dev" / disk).touch()
    root.mkdir(exist_ok=True)
    return DiskNames(TargetRoot(root), aliases or {}, mapping or {})


def test_device_names_aliases_ephemeral_and_dotted_partitions(tmp_path: Path) -> None:
    found = names(tmp_path, disks=("vdb", "vdc", "xvdd"),
                  aliases={"data": "/dev/vdc", "scratch": "ephemeral1", "odd": "sdz"},
                  mapping={"ephemeral0": "sdb", "ephemeral1": "/dev/sdd",
                           "ephemeral2": "sde", "root": "/dev/sda1"})
    assert found.resolve("data").device == "/dev/vdc"
    assert found.resolve("ephemeral0").device == "/dev/vdb"  # sdb -> vdb on virtio
    assert found.resolve("ephemeral").device == "/dev/vdb"
    assert found.resolve("scratch").device == "/dev/xvdd"  # alias -> EC2 name -> Xen name
    assert found.resolve("scratch").shown == "scratch (/dev/xvdd)"
    missing = found.resolve("ephemeral2")
    assert missing.device is None and missing.shown == "ephemeral2 (sde)"
    assert found.resolve("vdc").device == "/dev/vdc"
    assert found.resolve("/dev/disk/by-id/x").device == "/dev/disk/by-id/x"
    assert found.ephemeral() == ["ephemeral0", "ephemeral1", "ephemeral2"]
    assert found.split_dotted("ephemeral0.1") == ("ephemeral0", 1)
    assert found.split_dotted("data") == ("data", None)
    assert found.split_dotted("/dev/x.1") == ("/dev/x.1", None)


def test_fs_entry_forms(tmp_path: Path) -> None:
    found = names(tmp_path)
    spec = disk_setup.parse_fs({"device": "ephemeral0.2", "filesystem": "xfs",
                                "extra_opts": "-m crc=1", "replace_fs": "ntfs"}, found)
    assert (spec.device, spec.partition, spec.extra_opts, spec.replace_fs) == (
        "ephemeral0", "2", ("-m", "crc=1"), "ntfs")
    assert disk_setup.parse_fs({"device": "d", "filesystem": "ext4"}, found).partition == "any"
    assert disk_setup.parse_fs({"device": "d", "filesystem": "ext4", "partition": 3},
                               found).partition == "3"
    for bad, message in (({"filesystem": "ext4"}, "device"),
                         ({"device": "d"}, "filesystem"),
                         ({"device": "d", "filesystem": "ext4", "partition": "first"},
                          "partition"),
                         ({"device": "d", "filesystem": "ext4; rm"}, "filesystem")):
        with pytest.raises(SetupError, match=message):
            disk_setup.parse_fs(bad, found)


def test_mkfs_command_lines(tmp_path: Path) -> None:
    host = TargetRoot(Path("/"))
    spec = disk_setup.parse_fs({"device": "d", "filesystem": "ext4", "label": "data",
                                "extra_opts": ["-m", "0"]}, names(tmp_path))
    argv = disk_setup.mkfs_argv(host, spec, "/dev/x1", force=True, whole_disk=False) \
        if shutil.which("mkfs.ext4") else None
    if argv is not None:
        assert argv[1:] == ["-L", "data", "-F", "-q", "-m", "0", "/dev/x1"]
    shell = disk_setup.parse_fs({"device": "d", "filesystem": "ext4", "label": "a b",
                                 "cmd": "mkfs -t %(filesystem)s -L %(label)s %(device)s"},
                                names(tmp_path))
    assert disk_setup.mkfs_argv(host, shell, "/dev/x1", False, False) == [
        "/bin/sh", "-c", "mkfs -t ext4 -L 'a b' /dev/x1"]
    listed = disk_setup.parse_fs({"device": "d", "filesystem": "ext4",
                                  "cmd": ["mkfs.ext4", "%(device)s"]}, names(tmp_path))
    assert disk_setup.mkfs_argv(host, listed, "/dev/x1", False, False) == ["mkfs.ext4",
                                                                           "/dev/x1"]
    broken = disk_setup.parse_fs({"device": "d", "filesystem": "ext4",
                                  "cmd": "mkfs %(disk)s"}, names(tmp_path))
    with pytest.raises(SetupError, match="substitution"):
        disk_setup.mkfs_argv(host, broken, "/dev/x1", False, False)


def test_a_missing_disk_is_named_and_bad_entries_are_errors(tmp_path: Path) -> None:
    ctx = make_ctx(TargetRoot(tmp_path / "state"), {
        "disk_setup": {"ephemeral1": {"layout": True}, "/dev/vdq": {"layout": [200]}},
        "fs_setup": [{"device": "ephemeral1", "filesystem": "ext4"}, {"device": "x"}],
    }, instance=InstanceInfo(instance_id="i-1", metadata={
        "block-device-mapping": {"ephemeral1": "sdq"}}))
    disk_setup.handle(ctx)
    assert Problem("disk_setup[ephemeral1]", "ephemeral1 (sdq): no such disk here; skipped",
                   Level.WARNING) in ctx.problems
    assert any(p.where == "disk_setup[/dev/vdq]" and p.level is Level.ERROR
               for p in ctx.problems)
    assert Problem("fs_setup[0]", "ephemeral1 (sdq): no such device here; skipped",
                   Level.WARNING) in ctx.problems
    assert Problem("fs_setup[1]", "filesystem: required", Level.ERROR) in ctx.problems


# --- on loop devices ------------------------------------------------------------------

@pytest.fixture
def loops(tmp_path: Path) -> Iterator[list[str]]:
    with loop_devices(tmp_path, [64, 64]) as attached:
        yield attached


def host_ctx(tmp_path: Path, cfg: dict[str, Any],
             metadata: dict[str, Any] | None = None) -> ModuleContext:
    ctx = make_ctx(TargetRoot(tmp_path / "state"), cfg,
                   instance=InstanceInfo(instance_id="i-1", metadata=metadata or {}))
    ctx.target = TargetRoot(Path("/"))
    return ctx


def table(loop: str) -> dict[str, Any]:
    return dict(json.loads(sh("sfdisk", "--json", loop))["partitiontable"])


def part(loop: str, number: int) -> str:
    return f"{loop}p{number}"


def warnings(ctx: ModuleContext) -> list[str]:
    return [f"{p.where}: {p.message}" for p in ctx.problems if p.level is not Level.NOTE]


@needs_loop
def test_gpt_whole_disk_then_fs_then_nothing_again(tmp_path: Path, loops: list[str]) -> None:
    loop = loops[0]
    cfg = {"device_aliases": {"data": loop},
           "disk_setup": {"data": {"table_type": "gpt", "layout": True}},
           "fs_setup": [{"device": "data", "partition": "auto", "filesystem": "ext4",
                         "label": "data"}]}
    ctx = host_ctx(tmp_path, cfg)
    disk_setup.handle(ctx)
    assert ctx.problems == []
    layout = table(loop)
    assert layout["label"] == "gpt" and len(layout["partitions"]) == 1
    assert layout["partitions"][0]["type"] == LINUX_GPT
    assert (blkid(part(loop, 1), "TYPE"), blkid(part(loop, 1), "LABEL")) == ("ext4", "data")
    uuid = blkid(part(loop, 1), "UUID")
    # Again (a rerun or a second config with the same entries): nothing is rewritten.
    again = host_ctx(tmp_path, cfg)
    disk_setup.handle(again)
    assert again.problems == []
    assert blkid(part(loop, 1), "UUID") == uuid


@needs_loop
def test_mbr_sizes_and_types_by_ephemeral_name(tmp_path: Path, loops: list[str]) -> None:
    loop = loops[1]
    name = Path(loop).name
    ctx = host_ctx(tmp_path, {
        "disk_setup": {"ephemeral0": {"table_type": "mbr", "layout": [25, [75, 82]]}},
        "fs_setup": [{"device": "ephemeral0.2", "filesystem": "swap", "label": "sw"},
                     {"device": "ephemeral0", "partition": 1, "filesystem": "xfs",
                      "label": "small"}]},
        metadata={"block-device-mapping": {"ephemeral0": name}})
    disk_setup.handle(ctx)
    layout = table(loop)
    assert layout["label"] == "dos"
    assert [p["type"] for p in layout["partitions"]] == ["83", "82"]
    sizes = [p["size"] for p in layout["partitions"]]
    assert sizes[0] == 16 * MiB // 512 and sizes[1] > 40 * MiB // 512
    assert (blkid(part(loop, 2), "TYPE"), blkid(part(loop, 2), "LABEL")) == ("swap", "sw")
    if shutil.which("mkfs.xfs"):
        # xfs wants 300 MiB at least: mkfs fails on 16 MiB, and says so.
        assert any("mkfs.xfs" in w for w in warnings(ctx)), ctx.problems
        assert blkid(part(loop, 1), "TYPE") is None


@needs_loop
def test_a_disk_holding_a_filesystem_is_left_alone_without_overwrite(
        tmp_path: Path, loops: list[str]) -> None:
    loop = loops[0]
    sh("mkfs.ext4", "-q", "-L", "precious", loop)
    uuid = blkid(loop, "UUID")
    cfg: dict[str, Any] = {"disk_setup": {loop: {"table_type": "gpt", "layout": True}},
                           "fs_setup": [{"device": loop, "partition": "none",
                                         "filesystem": "ext4", "label": "other"}]}
    ctx = host_ctx(tmp_path, cfg)
    disk_setup.handle(ctx)
    assert warnings(ctx) == [
        f"disk_setup[{loop}]: holds a ext4 filesystem labelled 'precious'; left alone "
        "(overwrite: true replaces it)",
        f"fs_setup[0] ({loop}): {loop} holds a ext4 filesystem labelled 'precious'; left "
        "alone (overwrite: true or replace_fs replaces it)"]
    assert blkid(loop, "UUID") == uuid and blkid(loop, "PTTYPE") is None
    # overwrite: true on the disk replaces it.
    cfg["disk_setup"][loop]["overwrite"] = True
    over = host_ctx(tmp_path, {"disk_setup": cfg["disk_setup"]})
    disk_setup.handle(over)
    assert over.problems == []
    assert blkid(loop, "PTTYPE") == "gpt" and blkid(loop, "TYPE") is None


@needs_loop
def test_another_partition_table_is_left_alone(tmp_path: Path, loops: list[str]) -> None:
    loop = loops[0]
    sh("sh", "-c", f"printf 'label: dos\\nsize=20MiB\\nsize=20MiB\\n' | sfdisk -q {loop}")
    before = table(loop)
    ctx = host_ctx(tmp_path, {"disk_setup": {loop: {"table_type": "gpt", "layout": True}},
                              "fs_setup": [{"device": loop, "partition": "none",
                                            "filesystem": "ext4", "overwrite": False}]})
    disk_setup.handle(ctx)
    assert warnings(ctx) == [
        f"disk_setup[{loop}]: holds a dos partition table; left alone (overwrite: true "
        "replaces it)",
        f"fs_setup[0] ({loop}): {loop} holds a dos partition table; left alone (overwrite: "
        "true or replace_fs replaces it)"]
    assert table(loop) == before


@needs_loop
def test_fs_setup_never_formats_over_another_filesystem(tmp_path: Path,
                                                        loops: list[str]) -> None:
    loop = loops[0]
    ctx = host_ctx(tmp_path, {"disk_setup": {loop: {"layout": [50, 50]}}})
    disk_setup.handle(ctx)
    sh("mkfs.vfat", part(loop, 1)) if shutil.which("mkfs.vfat") else sh(
        "mkfs.ext2", "-q", part(loop, 1))
    other = blkid(part(loop, 1), "TYPE")
    kept = blkid(part(loop, 1), "UUID")
    # auto: partition 1 holds something else, so the first blank one (2) is used.
    auto = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": "auto",
                                             "filesystem": "ext4", "label": "two"}]})
    disk_setup.handle(auto)
    assert auto.problems == []
    assert blkid(part(loop, 2), "LABEL") == "two" and blkid(part(loop, 1), "UUID") == kept
    # Now every partition holds something: auto with another label finds no room.
    full = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": "auto",
                                             "filesystem": "ext3", "label": "three"}]})
    disk_setup.handle(full)
    assert "no partition without a filesystem; left alone" in warnings(full)[0]
    # any: an ext4 of another label counts as done.
    anyfs = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": "any",
                                              "filesystem": "ext4", "label": "else"}]})
    disk_setup.handle(anyfs)
    assert anyfs.problems == [] and blkid(part(loop, 2), "LABEL") == "two"
    # A named partition with another filesystem: left alone ...
    named = host_ctx(tmp_path, {"fs_setup": [{"device": f"{loop}", "partition": 1,
                                              "filesystem": "ext4"}]})
    disk_setup.handle(named)
    assert f"{part(loop, 1)} holds a {other} filesystem" in warnings(named)[0]
    assert blkid(part(loop, 1), "UUID") == kept
    # ... unless replace_fs names that filesystem ...
    replace = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": 1,
                                                "filesystem": "ext4", "label": "new",
                                                "replace_fs": other}]})
    disk_setup.handle(replace)
    assert replace.problems == [] and blkid(part(loop, 1), "LABEL") == "new"
    # ... or overwrite is true.
    over = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": 2,
                                             "filesystem": "ext2", "overwrite": True}]})
    disk_setup.handle(over)
    assert over.problems == [] and blkid(part(loop, 2), "TYPE") == "ext2"
    missing = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": 7,
                                                "filesystem": "ext4"}]})
    disk_setup.handle(missing)
    assert warnings(missing) == [f"fs_setup[0] ({loop}): has no partition 7"]


@needs_loop
def test_a_mounted_disk_is_never_written_even_with_overwrite(tmp_path: Path,
                                                             loops: list[str]) -> None:
    loop = loops[0]
    sh("mkfs.ext4", "-q", loop)
    uuid = blkid(loop, "UUID")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", loop, str(mnt)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.decode().strip()}")
    try:
        ctx = host_ctx(tmp_path, {
            "disk_setup": {loop: {"layout": True, "overwrite": True}},
            "fs_setup": [{"device": loop, "partition": "none", "filesystem": "ext2",
                          "overwrite": True}]})
        disk_setup.handle(ctx)
        assert warnings(ctx) == [f"disk_setup[{loop}]: in use ({mnt}); never written",
                                 f"fs_setup[0] ({loop}): in use ({mnt}); never written"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    assert blkid(loop, "UUID") == uuid


@needs_loop
@pytest.mark.parametrize("filesystem", ["ext2", "ext3", "ext4", "xfs", "btrfs", "vfat",
                                        "swap"])
def test_each_filesystem_with_its_label(tmp_path: Path, filesystem: str) -> None:
    tool = disk_setup.MKFS[filesystem][0]
    if shutil.which(tool) is None:
        pytest.skip(f"no {tool} on this host")
    size = 320 if filesystem in ("xfs", "btrfs") else 64
    with loop_devices(tmp_path, [size]) as (loop,):
        ctx = host_ctx(tmp_path, {"fs_setup": [{"device": loop, "partition": "none",
                                                "filesystem": filesystem,
                                                "label": "LBL"}]})
        disk_setup.handle(ctx)
        assert ctx.problems == []
        assert blkid(loop, "TYPE") == filesystem
        assert blkid(loop, "LABEL") == "LBL"


@needs_loop
def test_extra_opts_and_cmd(tmp_path: Path, loops: list[str]) -> None:
    first, second = loops
    ctx = host_ctx(tmp_path, {"fs_setup": [
        {"device": first, "partition": "none", "filesystem": "ext4",
         "extra_opts": ["-U", "0b4c7f52-5a4e-4d53-a0c4-1c8a3c2a9e01"]},
        {"device": second, "partition": "none", "filesystem": "ext3", "label": "bycmd",
         "cmd": "mkfs.%(filesystem)s -q -L %(label)s %(device)s"}]})
    disk_setup.handle(ctx)
    assert ctx.problems == []
    assert blkid(first, "UUID") == "0b4c7f52-5a4e-4d53-a0c4-1c8a3c2a9e01"
    assert (blkid(second, "TYPE"), blkid(second, "LABEL")) == ("ext3", "bycmd")
