"""Rescue boot: real ext4 volumes on loop devices, real mounts in a private namespace."""

from __future__ import annotations

import pytest
from bootseed.early.rescue import DEFAULT_LABELS, parse_labels

from tests.early.test_volumes_support import Lab, lab, needs_root, root_files

__all__ = ["lab"]

SEED = {"source": "nocloud", "instance_id": "i-rescued",
        "metadata": {"public-keys": ["ssh-ed25519 AAAA k"]}}


def test_labels_default_replace_and_off() -> None:
    assert parse_labels(None) == DEFAULT_LABELS == ("RESCUE", "UEC-rescue", "RESCUE_VOL")
    assert parse_labels("") == DEFAULT_LABELS
    assert parse_labels("MINE, other,") == ("MINE", "other")
    assert parse_labels("off") == ()
    assert parse_labels("none") == ()


@pytest.mark.root
@needs_root
def test_rescue_volume_becomes_root_and_original_is_kept_writable(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    rescue = lab.ext4("rescue", "RESCUE", root_files("rescue"))
    out = lab.boot(root, "ro quiet", seed=SEED, write={"media/original-root/repaired": "yes"})
    assert out["marker"] == "rescue"
    assert out["root"]["source"] == rescue and out["root"]["ro"]
    assert out["original"] == {"source": root, "fstype": "ext4", "ro": False}
    assert out["original_marker"] == "original"
    assert out["files"] == {"media/original-root/repaired": "yes"}
    assert out["problems"] == []
    assert out["left_mounted"] == []
    # The seed cache keeps the premount seed (so the same keys are authorized) and
    # records the rescue with its device.
    rescued = [a for a in out["seed_actions"] if a["action"] == "rescue"]
    assert rescued[0]["device"] == rescue and rescued[0]["label"] == "RESCUE"
    assert rescued[0]["original_root"] == "/media/original-root"
    assert rescued[0]["original_device"] == root


@pytest.mark.root
@needs_root
@pytest.mark.parametrize("marker", ["DONE", "finished", "etc/rescuevol-ignore"])
def test_marked_rescue_volume_is_skipped(lab: Lab, marker: str) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    rescue = lab.ext4("rescue", "RESCUE", root_files("rescue", {marker: ""}))
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original" and out["root"]["source"] == root
    skipped = [a for a in out["seed_actions"] if a["action"] == "rescue-skipped"]
    assert skipped == [{"action": "rescue-skipped", "device": rescue, "fstype": "ext4",
                        "label": "RESCUE", "uuid": skipped[0]["uuid"], "marker": marker}]


@pytest.mark.root
@needs_root
def test_rescue_off_on_the_command_line(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("rescue", "RESCUE", root_files("rescue"))
    out = lab.boot(root, "ro bootseed.rescue=off")
    assert out["marker"] == "original" and out["root"]["source"] == root
    # No seed.json from premount: the decisions go beside it, not into a fake seed.
    assert out["seed_actions"] is None
    assert out["side_record"]["actions"][0]["action"] == "rootswitch"


@pytest.mark.root
@needs_root
def test_label_order_and_compat_label(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("done", "RESCUE", root_files("done-rescue", {"DONE": ""}))
    compat = lab.ext4("compat", "RESCUE_VOL", root_files("compat-rescue"))
    out = lab.boot(root)
    assert out["marker"] == "compat-rescue" and out["root"]["source"] == compat
    assert out["original_marker"] == "original"


@pytest.mark.root
@needs_root
def test_command_line_list_replaces_the_labels(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("std", "RESCUE", root_files("std"))
    mine = lab.ext4("mine", "fixme", root_files("mine"))
    out = lab.boot(root, "ro bootseed.rescue=FIXME")
    assert out["marker"] == "mine" and out["root"]["source"] == mine


@pytest.mark.root
@needs_root
def test_rescue_volume_without_init_leaves_the_original_root(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("rescue", "RESCUE", {"marker": "no-init\n"})
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original" and out["root"] == {"source": root, "fstype": "ext4",
                                                           "ro": True}
    assert any("has no /sbin/init" in p for p in out["problems"])
    assert any("has no /sbin/init" in p for p in out["seed_problems"])
    assert out["left_mounted"] == []


@pytest.mark.root
@needs_root
def test_rescue_root_without_media_dir_gets_one(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    # A rescue root (read-only, as the initramfs mounts it) lacking /media entirely.
    files = root_files("rescue")
    rescue = lab.ext4("rescue", "UEC-rescue", files)
    out = lab.boot(root)
    assert out["root"]["source"] == rescue and out["root"]["ro"]
    assert out["original_marker"] == "original"
