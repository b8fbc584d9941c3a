"""Overlay root: tmpfs and volume-backed writable layers over a read-only image root, and
every failure leaving the original root in place. Real overlayfs, loop devices, namespaces."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from bootseed.early.overlay import adjust_fstab, parse_request

from tests.early.test_volumes_support import Lab, MiB, lab, needs_root, root_files

__all__ = ["lab"]

SEED = {"source": "nocloud", "instance_id": "i-overlay"}
WRITE = {"etc/written-in-boot": "boot 1"}


def test_requests() -> None:
    assert parse_request("tmpfs", "x").on_tmpfs
    request = parse_request("LABEL=rw,mkfs", "kernel command line: bootseed.overlay")
    assert (request.upper, request.mkfs) == ("LABEL=rw", True)
    assert parse_request("uuid=1234", "x").upper == "UUID=1234"
    assert parse_request("/dev/vdb,MKFS", "x").mkfs
    assert parse_request("off", "x") is None
    for bad, message in (("tmpfs,mkfs", "mkfs makes no sense"), ("LABEL=a,force", "unknown"),
                         ("vdb", "expected tmpfs"), ("LABEL=", "expected tmpfs")):
        with pytest.raises(ValueError, match=message) as err:
            parse_request(bad, "image config: overlay")
        assert str(err.value).startswith(f"image config: overlay: {bad}: ")


def test_fstab_root_line_commented_once(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    fstab = tmp_path / "etc/fstab"
    fstab.write_text("# static\nUUID=1 / ext4 defaults 0 1\nUUID=2 /boot ext4 defaults 0 2\n")
    assert adjust_fstab(tmp_path) == "/ entry commented out"
    assert adjust_fstab(tmp_path) == "no / entry"
    assert fstab.read_text() == ("# static\n# bootseed overlay root: UUID=1 / ext4 defaults 0 1\n"
                                 "UUID=2 /boot ext4 defaults 0 2\n")
    assert adjust_fstab(tmp_path / "none") == "no /etc/fstab"


def _assert_overlay(out: dict, root: str) -> None:
    assert out["root"]["fstype"] == "overlay" and not out["root"]["ro"]
    assert out["root_ro"] == {"source": root, "fstype": "ext4", "ro": True}
    assert out["marker"] == "original"
    assert out["fstab"].startswith("# bootseed overlay root: LABEL=imgroot / ext4")
    assert out["left_mounted"] == []


@pytest.mark.root
@needs_root
def test_tmpfs_overlay_forgets_writes_and_leaves_the_image_unchanged(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    before = lab.digest("root")
    first = lab.boot(root, "ro bootseed.overlay=tmpfs", seed=SEED, write=WRITE)
    _assert_overlay(first, root)
    assert first["root_rw"]["fstype"] == "tmpfs"
    assert first["files"] == {"etc/written-in-boot": "boot 1"}
    [record] = [a for a in first["seed_actions"] if a["action"] == "overlay"]
    assert (record["requested"], record["lower"], record["upper"]) == (
        "tmpfs", "/media/root-ro", "/media/root-rw")
    second = lab.boot(root, "ro aufs=tmpfs", seed=SEED)
    _assert_overlay(second, root)
    assert "etc/written-in-boot" not in second["files"]
    assert second["fstab"] and "boot 1" not in str(second)
    assert lab.digest("root") == before


@pytest.mark.root
@needs_root
def test_volume_overlay_is_formatted_when_blank_and_persists(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files(
        "original", {"etc/bootseed/bootseed.cfg": "overlay: LABEL=ovl,mkfs\n"}))
    upper = lab.blank("upper", 64)
    before = lab.digest("root")
    first = lab.boot(root, "ro", seed=SEED, write=WRITE)
    _assert_overlay(first, root)
    assert first["root_rw"] == {"source": upper, "fstype": "ext4", "ro": False}
    [record] = [a for a in first["seed_actions"] if a["action"] == "overlay"]
    assert record["formatted"] is True and record["volume"]["label"] == "ovl"
    assert record["origin"] == "image config: overlay"
    second = lab.boot(root, "ro bootseed.overlay=LABEL=OVL", seed=SEED)
    _assert_overlay(second, root)
    assert second["root_rw"]["source"] == upper
    assert second["marker"] == "original"
    [record] = [a for a in second["seed_actions"] if a["action"] == "overlay"]
    assert record["formatted"] is False
    assert lab.digest("root") == before
    # Boot 1's write lives in the upper layer on the volume, not in the image.
    check = subprocess.run(["debugfs", "-R", "cat /upper/etc/written-in-boot",
                            str(lab.images["upper"])], capture_output=True, text=True)
    assert check.stdout.strip() == "boot 1"


@pytest.mark.root
@needs_root
def test_read_write_root_is_made_read_only_under_the_overlay(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    out = lab.boot(root, "rw bootseed.overlay=tmpfs", root_rw=True, write=WRITE)
    _assert_overlay(out, root)


@pytest.mark.root
@needs_root
def test_volume_with_data_is_never_formatted(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files(
        "original", {"etc/bootseed/bootseed.cfg": "volumes:\n  timeout: 1\n"}))
    data = lab.blank("data", 64)
    with open(lab.images["data"], "r+b") as handle:
        handle.seek(3 * MiB)
        handle.write(b"precious")
        handle.seek(0)
        handle.write(b"\1")
    lab.ext4("fs", None, {"keep": "me"})
    before = {name: lab.digest(name) for name in ("root", "data", "fs")}
    for spec in (f"{data},mkfs", "LABEL=ovl,mkfs"):
        out = lab.boot(root, f"ro bootseed.overlay={spec}", seed=SEED)
        assert out["root"] == {"source": root, "fstype": "ext4", "ro": True}
        assert out["marker"] == "original" and out["left_mounted"] == []
        assert any("never formatted" in p for p in out["seed_problems"]), out["seed_problems"]
    assert {name: lab.digest(name) for name in before} == before


@pytest.mark.root
@needs_root
def test_too_small_volume_boots_the_original_root(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("tiny", "ovl", {}, size_mib=8)
    out = lab.boot(root, "ro bootseed.overlay=LABEL=ovl", seed=SEED)
    assert out["root"] == {"source": root, "fstype": "ext4", "ro": True}
    assert out["fstab"].startswith("LABEL=imgroot / ext4")
    assert any("too small for the writable layer" in p for p in out["seed_problems"])
    assert "bootseed-root: error: overlay: LABEL=ovl" in out["stderr"]


@pytest.mark.root
@needs_root
def test_corrupt_volume_boots_the_original_root(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("bad", "ovl", {})
    # Keep the superblock (bytes 1024-2047, so the label is found) and wreck the group
    # descriptors right after it (block 2 with 1 KiB blocks, block 1 with 4 KiB ones).
    with open(lab.images["bad"], "r+b") as handle:
        handle.seek(2048)
        handle.write(b"\xff" * 64 * 1024)
    out = lab.boot(root, "ro bootseed.overlay=LABEL=ovl", seed=SEED)
    assert out["root"] == {"source": root, "fstype": "ext4", "ro": True}
    assert out["marker"] == "original" and out["left_mounted"] == []
    assert any(p.startswith("LABEL=ovl: mount ") for p in out["seed_problems"])


@pytest.mark.root
@needs_root
def test_failure_after_the_overlay_is_mounted_is_undone(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    out = lab.boot(root, "ro bootseed.overlay=tmpfs", init="/sbin/missing-init")
    assert out["root"] == {"source": root, "fstype": "ext4", "ro": True}
    assert out["root_ro"] is None and out["root_rw"] is None
    assert out["left_mounted"] == []
    assert out["side_record"]["problems"] == [
        {"where": "overlay",
         "message": "tmpfs: the overlay root has no /sbin/missing-init; original root kept",
         "level": "warning"}]


@pytest.mark.root
@needs_root
def test_missing_overlay_label_within_the_bound(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files(
        "original", {"etc/bootseed/bootseed.cfg": "volumes:\n  timeout: 1\n"}))
    out = lab.boot(root, "ro bootseed.overlay=LABEL=absent")
    assert out["root"]["source"] == root and out["root"]["fstype"] == "ext4"
    assert any("LABEL=absent: no such volume within 1s" in p["message"]
               for p in out["side_record"]["problems"])
    assert out["elapsed"] < 10
