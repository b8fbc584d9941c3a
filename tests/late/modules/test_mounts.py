"""``mounts``: fstab entries, the EC2 block-device-mapping, bootseed's own lines, swap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late import swapfile
from bootseed.late.modules import mounts
from bootseed.late.modules.base import InstanceInfo, ModuleContext
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx

OPTS = "defaults,nofail,x-systemd.after=bootseed.service"
FOREIGN = ("# /etc/fstab: static file system information.\n"
           "UUID=r   /      ext4    errors=remount-ro 0       1\n"
           "/dev/sdc /data ext4 defaults 0 2\n"
           "UUID=u-1 /srv/vol ext4 defaults,nofail 0 2 # bootseed volume\n"
           "\n"
           "tmpfs /tmp tmpfs  mode=1777   0 0\n")


def target_with(tmp_path: Path, disks: tuple[str, ...] = (), fstab: str = FOREIGN
                ) -> TargetRoot:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/fstab").write_text(fstab)
    (root / "sys/class/block").mkdir(parents=True)
    (root / "dev").mkdir()
    for name in disks:
        (root / "sys/class/block" / name).mkdir()
        (root / "dev" / name).write_text("")
    return TargetRoot(root)


def run(target: TargetRoot, cfg: dict[str, Any], bdm: dict[str, str] | None = None
        ) -> ModuleContext:
    info = InstanceInfo("i-1", metadata={"block-device-mapping": bdm} if bdm else {})
    ctx = make_ctx(target, cfg, name="mounts", instance=info)
    mounts.handle(ctx)
    return ctx


def ours(target: TargetRoot) -> list[str]:
    return [line for line in target.read_text("/etc/fstab").splitlines()
            if line.endswith(" # bootseed")]


def test_every_device_form_with_defaults_filled(tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("sdd", "xvde"))
    ctx = run(target, {"mounts": [
        ["/dev/sdd", "/srv/d"],
        ["LABEL=logs", "/var/log/big", "ext4", "noatime", 0, 0],
        ["UUID=0a1b-2c3d", "/srv/u", None, None, "1"],
        ["sde", "/srv/e", "xfs"],  # short name; only xvde exists here
        ["xvdf", "/srv/f"],  # short name, absent: written with nofail and reported
        ["nfs.example:/export", "/srv/nfs", "nfs", "rw"],
    ]})
    assert ours(target) == [
        f"/dev/sdd /srv/d auto {OPTS} 0 2 # bootseed",
        "LABEL=logs /var/log/big ext4 noatime,nofail 0 0 # bootseed",
        f"UUID=0a1b-2c3d /srv/u auto {OPTS} 1 2 # bootseed",
        f"/dev/xvde /srv/e xfs {OPTS} 0 2 # bootseed",
        f"/dev/xvdf /srv/f auto {OPTS} 0 2 # bootseed",
        "nfs.example:/export /srv/nfs nfs rw,nofail 0 2 # bootseed",
    ]
    missing = {p.where for p in ctx.problems if p.level is Level.WARNING}
    assert missing == {"mounts: LABEL=logs", "mounts: UUID=0a1b-2c3d", "mounts: /dev/xvdf"}
    for point in ("srv/d", "var/log/big", "srv/u", "srv/e", "srv/f", "srv/nfs"):
        assert (target.root / point).is_dir()


def test_mount_default_fields_replace_the_defaults(tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("vdb",))
    run(target, {"mount_default_fields": [None, None, "ext4", "defaults,noexec", "0", "0"],
                 "mounts": [["vdb", "/scratch"]]})
    assert ours(target) == ["/dev/vdb /scratch ext4 defaults,noexec,nofail 0 0 # bootseed"]


@pytest.mark.parametrize("guest", ["sdb", "xvdb", "vdb"])
def test_block_device_mapping_names_the_guest_device(tmp_path: Path, guest: str) -> None:
    target = target_with(tmp_path, disks=(guest, "sda1"))
    run(target, {}, bdm={"ami": "sda1", "ephemeral0": "sdb", "root": "/dev/sda1"})
    assert ours(target) == [f"/dev/{guest} /mnt auto {OPTS} 0 2 # bootseed"]


def test_ephemeral_swap_and_ebs_names(tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("xvdb", "xvdc", "xvdh"))
    bdm = {"ephemeral0": "sdb", "swap": "sdc", "ebs1": "/dev/sdh", "ephemeral1": "sdz"}
    ctx = run(target, {"mounts": [["ephemeral", "/mnt/eph", None, "noexec"],
                                  ["ebs1", "/data1"], ["ephemeral1", "/mnt/eph1"],
                                  ["ephemeral9", "/mnt/eph9"]]}, bdm)
    assert ours(target) == [
        "/dev/xvdb /mnt/eph auto noexec,nofail 0 2 # bootseed",
        f"/dev/xvdh /data1 auto {OPTS} 0 2 # bootseed",
        "/dev/xvdc none swap sw,nofail 0 0 # bootseed",
    ]
    # a mapped name whose device is absent, and an unmapped one, are skipped with a note
    assert {(p.where, p.level) for p in ctx.problems} == {
        ("mounts[2]", Level.NOTE), ("mounts[3]", Level.NOTE)}
    # and the note names the disk the mapping expected
    assert [p.message for p in ctx.problems] == [
        "ephemeral1 (sdz): the block-device-mapping names it but no such disk is here; "
        "skipped",
        "ephemeral9: not in this instance's block-device-mapping; skipped"]


def test_null_mount_point_drops_the_line_written_before(tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("xvdb", "xvdc"))
    bdm = {"ephemeral0": "sdb", "swap": "sdc"}
    run(target, {}, bdm)
    assert len(ours(target)) == 2
    run(target, {"mounts": [["ephemeral0", None], ["swap"]]}, bdm)
    assert ours(target) == []
    assert target.read_text("/etc/fstab") == FOREIGN


def test_ephemeral0_moved_rewrites_the_line_and_reruns_are_byte_identical(
        tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("xvdb", "xvdd"))
    cfg = {"mounts": [["ephemeral0", "/mnt"], ["/dev/xvdd", "/srv/d"]]}
    run(target, cfg, {"ephemeral0": "sdb"})
    first = target.read_text("/etc/fstab")
    run(target, cfg, {"ephemeral0": "sdb"})
    assert target.read_text("/etc/fstab") == first
    run(target, cfg, {"ephemeral0": "sdd"})  # another instance type, another disk
    assert ours(target) == [f"/dev/xvdd /mnt auto {OPTS} 0 2 # bootseed"]
    after = target.read_text("/etc/fstab")
    run(target, cfg, {"ephemeral0": "sdd"})
    assert target.read_text("/etc/fstab") == after


def test_lines_bootseed_did_not_write_are_never_touched(tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("sdc", "sdf"))
    ctx = run(target, {"mounts": [["/dev/sdc", "/other"], ["/dev/sdf", "/data"],
                                  ["/dev/sdf", "/srv/f"]]})
    text = target.read_text("/etc/fstab")
    assert text.startswith(FOREIGN)
    # /dev/sdc has its own line and /data is taken: both left alone; the third is
    # bootseed's first line for /dev/sdf
    assert ours(target) == [f"/dev/sdf /srv/f auto {OPTS} 0 2 # bootseed"]
    assert {p.where for p in ctx.problems if p.level is Level.NOTE} == {
        "mounts: /dev/sdc", "mounts: /dev/sdf"}


def test_a_bad_entry_is_reported_and_the_rest_written(tmp_path: Path) -> None:
    target = target_with(tmp_path, disks=("sdd",), fstab="")
    ctx = run(target, {"mounts": [["/dev/sdd", "/srv/a b"], "not-a-list",
                                  ["/dev/sdd", "relative"], ["/dev/sdd", "/srv/d", "#x"],
                                  ["/dev/sdd", "/srv/ok"]]})
    assert ours(target) == [f"/dev/sdd /srv/ok auto {OPTS} 0 2 # bootseed"]
    assert sorted(p.where for p in ctx.problems if p.level is Level.ERROR) == [
        "mounts: /dev/sdd", "mounts: /dev/sdd", "mounts: /dev/sdd", "mounts[1]"]
    assert not (target.root / "srv/a b").exists()


def test_nothing_to_do_leaves_a_missing_fstab_missing(tmp_path: Path) -> None:
    target = target_with(tmp_path)
    (target.root / "etc/fstab").unlink()
    ctx = run(target, {})
    assert not (target.root / "etc/fstab").exists() and ctx.problems == []


def test_sizes_and_the_auto_rule() -> None:
    GiB, MiB = swapfile.GiB, swapfile.MiB
    assert swapfile.parse_size("2G", "s") == 2 * GiB
    assert swapfile.parse_size("512M", "s") == 512 * MiB
    assert swapfile.parse_size("1.5g", "s") == int(1.5 * GiB)
    assert swapfile.parse_size("64KB", "s") == 64 * 1024
    assert swapfile.parse_size(4096, "s") == 4096
    for bad in ("lots", "-1G", True, "2X"):
        with pytest.raises(ValueError):
            swapfile.parse_size(bad, "s")
    big_disk = 1000 * GiB
    assert swapfile.suggested_size(2 * GiB, big_disk, None) == 2 * GiB  # < 4G: = RAM
    assert swapfile.suggested_size(8 * GiB, big_disk, None) == 4 * GiB  # < 16G: 4G
    assert swapfile.suggested_size(64 * GiB, big_disk, None) == 8 * GiB  # sqrt(64) G
    assert swapfile.suggested_size(2 * GiB, big_disk, 1 * GiB) == 1 * GiB  # maxsize
    assert swapfile.suggested_size(2 * GiB, 4 * GiB, None) == 1 * GiB  # a quarter of free
    assert swapfile.suggested_size(8 * GiB, 2 * GiB, 10 * GiB) == int(2 * GiB * 0.9)


def mkswap_root(tmp_path: Path) -> TargetRoot:
    """A chroot-able target with the host's mkswap and the libraries it links."""
    target = make_shell_root(tmp_path / "root")
    mkswap = shutil.which("mkswap")
    assert mkswap
    out = subprocess.run(["ldd", mkswap], capture_output=True, text=True, check=True).stdout
    libs = [part for line in out.splitlines() for part in line.split() if part.startswith("/")]
    for src in [mkswap, *libs]:
        dest = target.root / "usr/sbin/mkswap" if src == mkswap else target.root / src[1:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(src), dest)
    (target.root / "etc").mkdir(exist_ok=True)
    (target.root / "etc/fstab").write_text(FOREIGN)
    return target


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mkswap"),
                    reason="chroot needs root; needs mkswap")
def test_swap_file_is_made_once_and_listed(tmp_path: Path) -> None:
    target = mkswap_root(tmp_path)
    ctx = run(target, {"swap": {"filename": "/var/swap/file", "size": "8M"}})
    assert ctx.problems == []
    path = target.root / "var/swap/file"
    st = path.stat()
    assert (st.st_mode & 0o777, st.st_size) == (0o600, 8 * swapfile.MiB)
    assert swapfile.is_swap_file(path)
    assert ours(target) == ["/var/swap/file none swap sw,nofail 0 0 # bootseed"]
    inode, text = st.st_ino, target.read_text("/etc/fstab")
    run(target, {"swap": {"filename": "/var/swap/file", "size": "8M"}})
    assert path.stat().st_ino == inode and target.read_text("/etc/fstab") == text
    # maxsize caps an explicit size; an existing file that is not swap is left alone
    run(target, {"swap": {"filename": "/small", "size": "8M", "maxsize": "4M"}})
    assert (target.root / "small").stat().st_size == 4 * swapfile.MiB
    (target.root / "precious").write_text("data\n")
    ctx = run(target, {"swap": {"filename": "/precious", "size": "4M"}})
    assert [(p.where, p.level) for p in ctx.problems] == [("swap", Level.ERROR)]
    assert (target.root / "precious").read_text() == "data\n"
    assert "/precious" not in target.read_text("/etc/fstab")


def test_swap_without_mkswap_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    target = target_with(tmp_path)
    ctx = run(target, {"swap": {"filename": "/swap.img", "size": "4M"}})
    assert [(p.where, p.level) for p in ctx.problems] == [("swap", Level.ERROR)]
    assert "no mkswap" in ctx.problems[0].message
    assert not (target.root / "swap.img").exists() and ours(target) == []


# Runs with target "/" inside a private mount namespace, with an overlay on /etc whose
# upper layer is scratch, so the real fstab and the host's mounts are never touched.
RUN_ON_HOST = r"""
import json, subprocess, sys
from pathlib import Path
from bootseed.early.blockdev import mount_at
from bootseed.late.modules import mounts
from bootseed.late.modules.base import InstanceInfo
from bootseed.late.target import TargetRoot
from testsupport.targetfs import make_ctx

args = json.loads(sys.argv[1])
upper, work = args["upper"], args["work"]
subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir=/etc,upperdir={upper},workdir={work}", "/etc"], check=True)
Path("/etc/fstab").write_text("# scratch fstab\n")
runs = []
for _ in range(2):
    ctx = make_ctx(TargetRoot(Path(args["state"])), {"mounts": args["mounts"]},
                   instance=InstanceInfo("i-1"))
    ctx.target = TargetRoot(Path("/"))
    mounts.handle(ctx)
    runs.append({"problems": [[p.where, p.level.name] for p in ctx.problems],
                 "fstab": Path("/etc/fstab").read_text()})
entry = mount_at(args["point"])
print(json.dumps({"runs": runs, "mounted": entry.source if entry else None,
                  "data": (Path(args["point"]) / "hello").read_text() if entry else None}))
"""


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/loop-control")
                    or not shutil.which("unshare") or not shutil.which("mkfs.ext4"),
                    reason="needs root, loop devices, unshare and mkfs.ext4")
def test_on_the_running_system_new_lines_are_mounted(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[3]
    image = tmp_path / "vol.img"
    image.write_bytes(b"")
    os.truncate(image, 16 * swapfile.MiB)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
    subprocess.run(["debugfs", "-w", "-R", "write /dev/null hello", str(image)],
                   capture_output=True, check=False)
    loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                          text=True, check=True).stdout.strip()
    real_fstab = Path("/etc/fstab").read_bytes() if Path("/etc/fstab").exists() else None
    try:
        (tmp_path / "upper").mkdir()
        (tmp_path / "work").mkdir()
        point = str(tmp_path / "mnt/data")
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", sys.executable, "-c", RUN_ON_HOST,
             json.dumps({"upper": str(tmp_path / "upper"), "work": str(tmp_path / "work"),
                         "state": str(tmp_path / "state"),
                         "point": point,
                         "mounts": [[loop, point, "ext4"],
                                    ["/dev/bootseed-absent", str(tmp_path / "gone")]]})],
            capture_output=True, text=True, timeout=120, cwd=repo,
            env={"PYTHONPATH": str(repo), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    first, second = out["runs"]
    assert first["fstab"] == (
        f"# scratch fstab\n{loop} {point} ext4 {OPTS} 0 2 # bootseed\n"
        f"/dev/bootseed-absent {tmp_path}/gone auto {OPTS} 0 2 # bootseed\n")
    # the absent device is reported (and not tried); the present one is mounted
    assert first["problems"] == [["mounts: /dev/bootseed-absent", "WARNING"]]
    assert second == first
    assert out["mounted"] == loop and out["data"] == ""
    assert (Path("/etc/fstab").read_bytes() if Path("/etc/fstab").exists() else None) \
        == real_fstab
