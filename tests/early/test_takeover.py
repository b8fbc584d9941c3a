"""Root take-over and volume consumption: real ext4 volumes, real mounts, private namespace."""

from __future__ import annotations

import pytest

from tests.early.test_volumes_support import Lab, lab, needs_root, root_files

__all__ = ["lab"]

SEED = {"source": "nocloud", "instance_id": "i-takeover"}
ROOT_YAML = "# this volume is the root now\naction: root\n"


def _actions(out: dict, name: str) -> list[dict]:
    return [a for a in out["seed_actions"] if a["action"] == name]


@pytest.mark.root
@needs_root
def test_volume_file_action_root_takes_over(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    ebs = lab.ext4("ebs", "data1", root_files("ebs-root", {"bootseed-volume.yaml": ROOT_YAML}))
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "ebs-root"
    assert out["root"] == {"source": ebs, "fstype": "ext4", "ro": True}
    assert out["problems"] == [] and out["left_mounted"] == []
    taken = _actions(out, "takeover")
    assert taken[0]["device"] == ebs and taken[0]["original_device"] == root
    assert taken[0]["reason"] == "bootseed-volume.yaml action: root"


@pytest.mark.root
@needs_root
def test_takeover_keeps_a_read_write_root_read_write(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    ebs = lab.ext4("ebs", None, root_files("ebs-root", {"bootseed-volume.yaml": ROOT_YAML}))
    out = lab.boot(root, "rw", root_rw=True, write={"written": "on the new root"})
    assert out["root"] == {"source": ebs, "fstype": "ext4", "ro": False}
    assert out["files"] == {"written": "on the new root"}


@pytest.mark.root
@needs_root
def test_forced_takeover_by_label_and_uuid_without_a_volume_file(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    other = lab.ext4("other", "OtherRoot", root_files("forced"))
    out = lab.boot(root, "ro bootseed.root=LABEL=otherroot", seed=SEED)
    assert out["marker"] == "forced" and out["root"]["source"] == other
    assert _actions(out, "takeover")[0]["reason"] == "bootseed.root=LABEL=otherroot"
    uuid = _actions(out, "takeover")[0]["uuid"]
    again = lab.boot(root, f"ro bootseed.root=UUID={uuid}")
    assert again["marker"] == "forced"


@pytest.mark.root
@needs_root
def test_forced_label_missing_within_the_bound_boots_normally(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files(
        "original", {"etc/bootseed/bootseed.cfg": "final_message: hi\nvolumes:\n  timeout: 1.5\n"}))
    out = lab.boot(root, "ro bootseed.root=LABEL=nowhere", seed=SEED)
    assert out["marker"] == "original" and out["root"]["source"] == root
    assert any("LABEL=nowhere: no such volume within 1.5s" in p for p in out["seed_problems"])
    assert 1.4 < out["elapsed"] < 10
    assert "bootseed-root: error: takeover: bootseed.root" in out["stderr"]


@pytest.mark.root
@needs_root
def test_takeover_volume_without_init_is_refused(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("ebs", "data1", {"bootseed-volume.yaml": ROOT_YAML, "marker": "no init\n"})
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original" and out["root"]["source"] == root
    assert any("has no /sbin/init" in p for p in out["seed_problems"])
    assert out["left_mounted"] == []


@pytest.mark.root
@needs_root
def test_two_volumes_asking_for_root_take_over_nothing(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("a", "a", root_files("a", {"bootseed-volume.yaml": ROOT_YAML}))
    lab.ext4("b", "b", root_files("b", {"bootseed-volume.yaml": ROOT_YAML}))
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original"
    assert any("several volumes ask to become the root" in p for p in out["seed_problems"])


@pytest.mark.root
@needs_root
def test_mount_and_exec_actions_are_recorded_for_the_late_agent(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    data = lab.ext4("data", "data", {"bootseed-volume.yaml":
                                     "action: mount\nmountpoint: /srv/data/\noptions: noatime\n"})
    tool = lab.ext4("tool", None, {"bootseed-volume.yaml": "action: exec\nrun: bin/setup.sh\n",
                                   "bin/setup.sh": "#!/bin/sh\necho hi\n"})
    broken = lab.ext4("broken", "broken", {"bootseed-volume.yaml": "action: explode\n"})
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original"
    [mount] = _actions(out, "volume-mount")
    assert (mount["device"], mount["label"], mount["mountpoint"], mount["options"]) == (
        data, "data", "/srv/data", "noatime")
    assert mount["uuid"] and mount["fstype"] == "ext4"
    [run] = _actions(out, "volume-exec")
    assert (run["device"], run["run"]) == (tool, "bin/setup.sh")
    assert [p for p in out["seed_problems"] if broken in p] == [
        f"{broken} (LABEL=broken UUID={_uuid(out, broken)} TYPE=ext4):/bootseed-volume.yaml: "
        "action: 'explode'; expected one of root, mount, exec"]


def _uuid(out: dict, device: str) -> str:
    import subprocess

    # -c /dev/null: the blkid cache keeps a reused loop device's old UUID.
    return subprocess.run(["blkid", "-c", "/dev/null", "-s", "UUID", "-o", "value", device],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.root
@needs_root
def test_image_config_and_command_line_switch_consumption(lab: Lab) -> None:
    cfg = "volumes:\n  consume: false\n"
    root = lab.ext4("root", "imgroot", root_files(
        "original", {"etc/bootseed/bootseed.cfg": cfg}))
    lab.ext4("ebs", "ebs", root_files("ebs", {"bootseed-volume.yaml": ROOT_YAML}))
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original" and _actions(out, "takeover") == []
    forced_on = lab.boot(root, "ro bootseed.volumes=on", seed=SEED)
    assert forced_on["marker"] == "ebs"
    root2 = lab.ext4("root2", "imgroot2", root_files(
        "original2", {"etc/bootseed/bootseed.cfg.d/90-only-mount.cfg":
                      "volumes:\n  actions: [mount, exec]\n"}))
    limited = lab.boot(root2, seed=SEED, devices=[root2, lab.loops[1]])
    assert limited["marker"] == "original2"
    assert any("action root is turned off" in p for p in limited["seed_problems"])
    off = lab.boot(root2, "ro bootseed.volumes=off bootseed.early=off", seed=SEED)
    assert off["decision"] == "bootseed.early=off: nothing done"


@pytest.mark.root
@needs_root
def test_scanning_never_writes_to_the_volumes(lab: Lab) -> None:
    root = lab.ext4("root", "imgroot", root_files("original"))
    lab.ext4("data", "data", {"bootseed-volume.yaml": "action: mount\nmountpoint: /srv\n"})
    lab.ext4("plain", "plain", {"hello": "x"})
    lab.ext4("rescue-done", "RESCUE", root_files("r", {"DONE": ""}))
    before = {name: lab.digest(name) for name in ("root", "data", "plain", "rescue-done")}
    out = lab.boot(root, seed=SEED)
    assert out["marker"] == "original" and out["left_mounted"] == []
    assert {name: lab.digest(name) for name in before} == before
