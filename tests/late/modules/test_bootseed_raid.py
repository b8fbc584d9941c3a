"""``bootseed_raid``: the key's forms, the create/assemble/refuse decision for every case,
the mdadm command lines and the mdadm.conf/fstab lines; members probed on real loop
devices. Creating and assembling real md arrays needs the md kernel module: that test
runs where ``/proc/mdstat`` exists and is skipped (saying so) elsewhere."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late.blockprobe import Content
from bootseed.late.disknames import DiskNames, Resolved
from bootseed.late.modules import bootseed_raid
from bootseed.late.modules.base import InstanceInfo, ModuleContext
from bootseed.late.modules.bootseed_raid import (
    Decision,
    Member,
    RaidError,
    RaidSpec,
    Step,
    decide,
    parse_spec,
)
from bootseed.late.target import TargetRoot

from testsupport.loopdev import blkid, loop_devices, sh, unavailable
from testsupport.targetfs import make_ctx

needs_loop = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")
MD_MISSING = "the md kernel module is not loaded here (no /proc/mdstat): real arrays untested"
needs_md = pytest.mark.skipif(not Path("/proc/mdstat").exists(), reason=MD_MISSING)
MAPPING = {"ami": "sda", "ephemeral0": "sdb", "ephemeral1": "sdc", "ephemeral10": "sdk",
           "ephemeral2": "sdd"}


def names(tmp_path: Path, disks: tuple[str, ...] = ("vdb", "vdc", "vdd", "vdk"),
          mapping: dict[str, str] | None = None) -> DiskNames:
    root = tmp_path / "root"
    for disk in disks:
        (root / "sys/class/block" / disk).mkdir(parents=True)
    root.mkdir(exist_ok=True)
    return DiskNames(TargetRoot(root), {"fast": "/dev/nvme1n1"},
                     MAPPING if mapping is None else mapping)


def test_spec_forms(tmp_path: Path) -> None:
    found = names(tmp_path)
    spec = parse_spec({"name": "data", "level": 0, "devices": "ephemeral",
                       "mount": "/mnt/data", "label": "d"}, found)
    assert spec == RaidSpec("data", 0, ("ephemeral0", "ephemeral1", "ephemeral2",
                                        "ephemeral10"), "ext4", "d", "/mnt/data",
                            "defaults,nofail,x-systemd.after=bootseed.service")
    assert spec.node == "/dev/md/data"
    mirror = parse_spec({"name": "m", "level": "raid1", "devices": ["fast", "/dev/vdq"],
                         "filesystem": "xfs", "mount": "/srv", "mount_options": "noatime"},
                        found)
    assert (mirror.level, mirror.devices, mirror.filesystem, mirror.mount_options) == (
        1, ("fast", "/dev/vdq"), "xfs", "noatime,nofail")
    bare = parse_spec({"name": "raw", "level": "1", "devices": ["a", "b"],
                       "filesystem": None}, found)
    assert bare.filesystem is None and bare.mount is None


@pytest.mark.parametrize(("item", "message"), [
    ({"name": "-x", "level": 0, "devices": ["a", "b"]}, "name"),
    ({"name": "d", "level": 5, "devices": ["a", "b"]}, "level"),
    ({"name": "d", "level": 0, "devices": ["a"]}, "2 or more"),
    ({"name": "d", "level": 0, "devices": ["a", "a"]}, "named twice"),
    ({"name": "d", "level": 0, "devices": ["a", "b"], "mount": "mnt"}, "absolute"),
    ({"name": "d", "level": 0, "devices": ["a", "b"], "mount": "/m", "filesystem": None},
     "needs a filesystem"),
    ({"name": "d", "level": 0, "devices": ["a", "b"], "filesystem": "ntfs"}, "filesystem"),
    ({"name": "d", "level": 0, "devices": ["a", "b"], "mount": "/m x"}, "mount"),
])
def test_bad_specs(tmp_path: Path, item: dict[str, Any], message: str) -> None:
    with pytest.raises(RaidError, match=message):
        parse_spec(item, names(tmp_path))


def test_ephemeral_needs_two_mapped_disks(tmp_path: Path) -> None:
    with pytest.raises(RaidError, match="names 1 ephemeral disk"):
        parse_spec({"name": "d", "level": 0, "devices": "ephemeral"},
                   names(tmp_path, mapping={"ephemeral0": "sdb"}))


SPEC0 = RaidSpec("data", 0, ("ephemeral0", "ephemeral1"), "ext4", None, "/mnt/data",
                 "defaults,nofail")
SPEC1 = RaidSpec("data", 1, ("ephemeral0", "ephemeral1"), "ext4", None, None, "defaults")
BLANK = Content("/dev/vdb")


def member(name: str, content: Content | None, holder: str | None = None,
           running: bool = False) -> Member:
    device = None if content is None else f"/dev/vd{name[-1]}"
    return Member(Resolved(name, device, "sd" + name[-1]), content, holder, running)


def ours(label: str = "box:data") -> Content:
    return Content("/dev/vdx", fstype="linux_raid_member", label=label, uuid="u-1")


def test_blank_members_of_a_new_instance_are_created() -> None:
    assert decide(SPEC0, [member("e0", BLANK), member("e1", BLANK)], False) == \
        Decision(Step.CREATE)


def test_members_carrying_the_array_are_assembled_never_created() -> None:
    both = [member("e0", ours()), member("e1", ours("data"))]
    assert decide(SPEC0, both, created_here=False).step is Step.ASSEMBLE
    assert decide(SPEC0, both, created_here=True).step is Step.ASSEMBLE
    # udev's incremental assembly left an inactive array holding them: stopped first.
    held = [member("e0", ours(), "md127"), member("e1", ours(), "md127")]
    assert decide(SPEC0, held, True) == Decision(Step.ASSEMBLE, stop_first=("md127",))


def test_a_running_array_is_used_and_a_missing_member_named() -> None:
    running = [member("e0", ours(), "md127", True), member("e1", ours(), "md127", True)]
    assert decide(SPEC0, running, True) == Decision(Step.RUNNING, running="md127")
    degraded = decide(SPEC1, [member("e0", ours(), "md127", True), member("e1", None)], True)
    assert degraded.step is Step.RUNNING
    assert degraded.message == "member(s) e1 (sd1) missing; the array runs degraded"


def test_a_missing_member_never_makes_a_new_or_broken_array() -> None:
    raid0 = decide(SPEC0, [member("e0", ours()), member("e1", None)], True)
    assert raid0.step is Step.REFUSE
    assert raid0.message == ("member(s) e1 (sd1) missing; a RAID0 array cannot run without "
                             "them (not assembled, never re-created)")
    raid1 = decide(SPEC1, [member("e0", ours()), member("e1", None)], True)
    assert raid1 == Decision(Step.ASSEMBLE, "member(s) e1 (sd1) missing; assembled degraded")
    new = decide(SPEC0, [member("e0", BLANK), member("e1", None)], False)
    assert new == Decision(Step.REFUSE, "member(s) e1 (sd1) missing; a new array is not "
                                        "created degraded")


def test_data_on_a_member_is_never_overwritten() -> None:
    ext4 = Content("/dev/vdc", fstype="ext4", label="precious")
    refused = decide(SPEC0, [member("e0", BLANK), member("e1", ext4)], False)
    assert refused == Decision(Step.REFUSE, "e1 (/dev/vd1) holds a ext4 filesystem labelled "
                                            "'precious'; left alone, array not created")
    table = Content("/dev/vdc", pttype="gpt")
    assert decide(SPEC0, [member("e0", BLANK), member("e1", table)], False).step is \
        Step.REFUSE
    other = decide(SPEC0, [member("e0", ours("box:other")), member("e1", BLANK)], False)
    assert other.step is Step.REFUSE and "md RAID member of array box:other" in other.message
    mixed = decide(SPEC0, [member("e0", ours()), member("e1", BLANK)], False)
    assert mixed == Decision(Step.REFUSE, "e1 (/dev/vd1) not part of this array; not assembled")
    used = decide(SPEC0, [member("e0", BLANK, "md5", True), member("e1", BLANK)], False)
    assert used.step is Step.RUNNING  # a running array is used, never re-made


def test_blank_members_after_this_instance_made_the_array_are_not_recreated() -> None:
    refused = decide(SPEC0, [member("e0", BLANK), member("e1", BLANK)], created_here=True)
    assert refused.step is Step.REFUSE
    assert "made the array on an earlier boot" in refused.message


def test_command_lines() -> None:
    spec = RaidSpec("data", 1, ("a", "b"), "ext4", "lbl", "/m", "defaults")
    assert bootseed_raid.create_argv("mdadm", spec, ["/dev/vdb", "/dev/vdc"]) == [
        "mdadm", "--create", "/dev/md/data", "--run", "--metadata=1.2", "--level=1",
        "--raid-devices=2", "--name=data", "/dev/vdb", "/dev/vdc"]
    assert bootseed_raid.assemble_argv("mdadm", spec, ["/dev/vdb"], degraded=True) == [
        "mdadm", "--assemble", "/dev/md/data", "--run", "/dev/vdb"]
    assert bootseed_raid.assemble_argv("mdadm", spec, ["/dev/vdb", "/dev/vdc"], False) == [
        "mdadm", "--assemble", "/dev/md/data", "/dev/vdb", "/dev/vdc"]
    assert bootseed_raid.mkfs_argv("mkfs.ext4", spec, "/dev/md/data") == [
        "mkfs.ext4", "-L", "lbl", "-q", "/dev/md/data"]


def test_mdadm_conf_and_fstab_lines_are_replaced_in_place() -> None:
    conf = "HOMEHOST <system>\nARRAY /dev/md/keep UUID=k\n"
    line = "ARRAY /dev/md/data metadata=1.2 UUID=a:b name=box:data"
    once = bootseed_raid.conf_with(conf, "data", line)
    assert once == conf + "# bootseed raid data\n" + line + "\n"
    assert bootseed_raid.conf_with(once, "data", line) == once
    moved = bootseed_raid.conf_with(once, "data", line.replace("a:b", "c:d"))
    assert moved.count("ARRAY /dev/md/data") == 1 and "UUID=c:d" in moved
    fstab = "/dev/vda1 / ext4 defaults 0 1\n/dev/vdq /mnt/data ext4 defaults 0 2\n"
    row = "UUID=u /mnt/data ext4 defaults,nofail 0 2 # bootseed raid"
    written = bootseed_raid.fstab_with(fstab, "/mnt/data", row)
    assert written == fstab + row + "\n"  # a line bootseed did not write stays
    assert bootseed_raid.fstab_with(written, "/mnt/data", row) == written
    assert bootseed_raid.fstab_with(written, "/mnt/data", row.replace("UUID=u", "UUID=v")) \
        .count("# bootseed raid") == 1


# --- members on loop devices ------------------------------------------------------------

@pytest.fixture
def loops(tmp_path: Path) -> Iterator[list[str]]:
    with loop_devices(tmp_path, [32, 32]) as attached:
        yield attached


def host_ctx(tmp_path: Path, cfg: dict[str, Any], mapping: dict[str, str]) -> ModuleContext:
    ctx = make_ctx(TargetRoot(tmp_path / "state"), cfg, instance=InstanceInfo(
        instance_id="i-1", metadata={"block-device-mapping": mapping}))
    ctx.target = TargetRoot(Path("/"))
    return ctx


RAID_CFG = {"bootseed_raid": [{"name": "data", "level": 0, "devices": "ephemeral",
                               "mount": "/mnt/data"}]}


@needs_loop
def test_blank_loop_members_probe_as_blank_and_data_stops_everything(
        tmp_path: Path, loops: list[str]) -> None:
    first, second = loops
    ctx = make_ctx(TargetRoot(tmp_path / "state"), {})
    ctx.target = TargetRoot(Path("/"))
    raid = bootseed_raid.Raid(ctx, SPEC0)
    found = [raid.member(Resolved(f"ephemeral{i}", loop)) for i, loop in enumerate(loops)]
    assert [m.content for m in found] == [Content(first), Content(second)]
    assert decide(SPEC0, found, raid.created_here()).step is Step.CREATE
    sh("mkfs.ext4", "-q", "-L", "precious", second)
    uuid = blkid(second, "UUID")
    mapping = {"ephemeral0": Path(first).name, "ephemeral1": Path(second).name}
    run = host_ctx(tmp_path, RAID_CFG, mapping)
    bootseed_raid.handle(run)
    assert [(p.where, p.level) for p in run.problems] == [("data", Level.ERROR)]
    assert "holds a ext4 filesystem labelled 'precious'; left alone" in run.problems[0].message
    assert blkid(second, "UUID") == uuid and blkid(first, "TYPE") is None


@needs_loop
def test_a_missing_ephemeral_disk_is_named(tmp_path: Path, loops: list[str]) -> None:
    mapping = {"ephemeral0": Path(loops[0]).name, "ephemeral1": "sdq"}
    ctx = host_ctx(tmp_path, RAID_CFG, mapping)
    bootseed_raid.handle(ctx)
    assert [(p.where, p.level, p.message) for p in ctx.problems] == [
        ("data", Level.ERROR,
         "member(s) ephemeral1 (sdq) missing; a new array is not created degraded")]
    assert blkid(loops[0], "TYPE") is None


@needs_loop
def test_bad_entries_are_errors_and_the_rest_goes_on(tmp_path: Path, loops: list[str]) -> None:
    mapping = {"ephemeral0": Path(loops[0]).name, "ephemeral1": "sdq"}
    ctx = host_ctx(tmp_path, {"bootseed_raid": [{"name": "x", "level": 9, "devices": "a"},
                                                RAID_CFG["bootseed_raid"][0]]}, mapping)
    bootseed_raid.handle(ctx)
    assert [p.where for p in ctx.problems] == ["bootseed_raid[0]", "data"]


@needs_loop
@needs_md
def test_real_array_created_then_assembled_never_recreated(tmp_path: Path,
                                                           loops: list[str]) -> None:
    mapping = {"ephemeral0": Path(loops[0]).name, "ephemeral1": Path(loops[1]).name}
    cfg = {"bootseed_raid": [{"name": "bstest", "level": 1, "devices": "ephemeral"}]}
    ctx = host_ctx(tmp_path, cfg, mapping)
    try:
        bootseed_raid.handle(ctx)
        assert ctx.problems == []
        uuid = blkid("/dev/md/bstest", "UUID")
        assert uuid
        subprocess.run(["mdadm", "--stop", "/dev/md/bstest"], check=True, capture_output=True)
        again = host_ctx(tmp_path, cfg, mapping)
        bootseed_raid.handle(again)
        assert again.problems == []
        assert blkid("/dev/md/bstest", "UUID") == uuid
    finally:
        subprocess.run(["mdadm", "--stop", "/dev/md/bstest"], check=False,
                       capture_output=True)
        for loop in loops:
            subprocess.run(["mdadm", "--zero-superblock", loop], check=False,
                           capture_output=True)
