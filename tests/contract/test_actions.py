"""Recorded actions: typed records that keep the JSON the initramfs always wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.actions import (
    Action,
    ActionError,
    EarlyStage,
    Overlay,
    Rescue,
    RescueSkipped,
    RootSwitch,
    TakeOver,
    VolumeExec,
    VolumeMount,
    VolumeRef,
    action_from_dict,
    actions_from_json,
)
from bootseed.contract.problems import Level, Problem
from bootseed.contract.seedcache import (
    Seed,
    SeedCacheError,
    SideRecord,
    read_recorded_actions,
    read_seed_cache,
    read_side_record,
    write_seed_cache,
    write_side_record,
)

DATA = VolumeRef("/dev/vdb", "ext4", "data", "1111-aaaa")
EVERY_KIND: list[Action] = [
    EarlyStage(decision="network needed: DHCP", network={"interface": "eth0", "backend": "ip"},
               entropy_ready=True, python="3.11.2", uptime_start=1.5, uptime_end=2.25,
               process_start_uptime=1.25, wall_ms=1000.0),
    RootSwitch("root taken over by /dev/vdb", "/dev/vdb"),
    RescueSkipped(VolumeRef("/dev/vdd", "ext4", "RESCUE", "3333"), "DONE"),
    Rescue(VolumeRef("/dev/vdd", "ext4", "RESCUE"), "/media/original-root", "/dev/vda1",
           ("original root left read-only at /media/original-root: busy",)),
    TakeOver(DATA, "bootseed.root=LABEL=data", "/dev/vda1"),
    Overlay("tmpfs", "kernel command line: bootseed.overlay", "/media/root-ro",
            "/media/root-rw", "/ entry commented out", "/dev/vda1"),
    Overlay("LABEL=ovl", "image config: overlay", "/media/root-ro", "/media/root-rw",
            "no /etc/fstab", "/dev/vda1", VolumeRef("/dev/vde", "ext4", "ovl", "5555"), True),
    VolumeMount(DATA, "/srv/data", "noatime"),
    VolumeExec(VolumeRef("/dev/vdc"), "bin/setup.sh"),
]


@pytest.mark.parametrize("action", EVERY_KIND, ids=lambda a: a.KIND)
def test_every_kind_round_trips_through_json(action: Action) -> None:
    doc = json.loads(json.dumps(action.to_dict()))
    assert doc["action"] == action.KIND
    assert action_from_dict(doc) == action


def test_seed_cache_and_side_record_keep_typed_actions_and_problems(tmp_path: Path) -> None:
    problems = [Problem("early network", "no DHCP lease", Level.WARNING),
                Problem("rescue", "original root left read-only", Level.ERROR)]
    write_seed_cache(Seed(source="nocloud", actions=list(EVERY_KIND), problems=problems),
                     tmp_path)
    seed = read_seed_cache(tmp_path)
    assert seed is not None
    assert seed.actions == EVERY_KIND and seed.problems == problems
    write_side_record(SideRecord(actions=EVERY_KIND[1:3], problems=problems[:1]), tmp_path)
    side = read_side_record(tmp_path)
    assert side is not None and side.actions == EVERY_KIND[1:3] and side.problems == problems[:1]
    # Both files, each action once, seed.json's first.
    assert read_recorded_actions(tmp_path) == EVERY_KIND


def test_nothing_recorded_is_an_empty_list(tmp_path: Path) -> None:
    assert read_recorded_actions(tmp_path) == []
    assert read_side_record(tmp_path) is None


# seed.json and rootswitch.json as the initramfs wrote them before the records were typed
# (plain dicts, problems without a level).
OLD_SEED = {
    "format": 1, "source": "none", "location": None, "instance_id": None, "stage": "early",
    "created": 1700000000.0, "metadata": {}, "payloads": {}, "found": {},
    "timings": [{"name": "early.total", "duration_ms": 12.5, "outcome": "ok"}],
    "actions": [
        {"action": "early-stage", "decision": "network not needed", "network": None,
         "entropy_ready": None, "python": "3.11.2", "uptime_start": 3.0, "uptime_end": 3.5,
         "process_start_uptime": 2.75, "wall_ms": 750.0, "error": None},
        {"action": "rootswitch", "decision": "original root; overlay root, writes to tmpfs",
         "root": "/dev/vda1"},
        {"action": "overlay", "requested": "tmpfs", "origin": "image config: overlay",
         "lower": "/media/root-ro", "upper": "/media/root-rw", "root_device": "/dev/vda1",
         "fstab": "no / entry"},
        {"action": "volume-exec", "device": "/dev/vdc", "fstype": "ext4", "label": None,
         "uuid": "2222", "run": "go.sh"},
    ],
    "problems": [{"where": "volumes", "message": "/dev/vdf: no bootseed-volume.yaml action"}],
}
OLD_SIDE = {
    "format": 1,
    "actions": [{"action": "volume-mount", "device": "/dev/vdb", "fstype": "ext4",
                 "label": "data", "uuid": "1111-aaaa", "mountpoint": "/srv/data",
                 "options": "noatime"},
                {"action": "rescue", "device": "/dev/vdd", "fstype": "ext4",
                 "label": "RESCUE", "uuid": None, "original_root": "/media/original-root",
                 "original_device": "/dev/vda1", "notes": []}],
    "problems": [{"where": "takeover", "message": "bootseed.root: no such volume"}],
    "timings": [],
}


def test_files_from_before_the_typed_records_still_read(tmp_path: Path) -> None:
    (tmp_path / "seed.json").write_text(json.dumps(OLD_SEED))
    (tmp_path / "rootswitch.json").write_text(json.dumps(OLD_SIDE))
    seed = read_seed_cache(tmp_path)
    assert seed is not None
    early, switch, overlay, run = seed.actions
    assert isinstance(early, EarlyStage) and early.wall_ms == 750.0 and early.network is None
    assert switch == RootSwitch("original root; overlay root, writes to tmpfs", "/dev/vda1")
    assert isinstance(overlay, Overlay) and overlay.volume is None and overlay.fstab == "no / entry"
    assert run == VolumeExec(VolumeRef("/dev/vdc", "ext4", None, "2222"), "go.sh")
    # Problems recorded without a level were shown as warnings; they still are.
    assert seed.problems == [Problem("volumes", "/dev/vdf: no bootseed-volume.yaml action",
                                     Level.WARNING)]
    recorded = read_recorded_actions(tmp_path)
    assert recorded[4:] == [VolumeMount(DATA, "/srv/data", "noatime"),
                            Rescue(VolumeRef("/dev/vdd", "ext4", "RESCUE"),
                                   "/media/original-root", "/dev/vda1")]
    # Written again, the records are the same JSON as before.
    assert [a.to_dict() for a in seed.actions] == OLD_SEED["actions"]
    assert [a.to_dict() for a in recorded[4:]] == OLD_SIDE["actions"]


@pytest.mark.parametrize(("record", "message"), [
    ({"action": "volume-mount", "device": "/dev/vdb", "mountpoint": 5},
     "actions[1] (volume-mount): 'mountpoint' must be a string, got int"),
    ({"action": "volume-exec", "device": "/dev/vdb"}, "actions[1] (volume-exec): 'run' is missing"),
    ({"action": "volume-exec", "device": "/dev/vdb", "run": "x", "when": "now"},
     "actions[1] (volume-exec): unknown key(s) 'when'"),
    ({"action": "format-disk"}, "actions[1]: 'action' is 'format-disk'; expected one of"),
    ({"device": "/dev/vdb"}, "actions[1]: 'action' is None"),
    ("volume-mount", "actions[1]: expected an object, got str"),
    ({"action": "rescue", "device": "/dev/vdd", "original_root": "/m", "notes": "x"},
     "actions[1] (rescue): 'notes' must be a list of strings, got str"),
    ({"action": "early-stage", "wall_ms": True},
     "actions[1] (early-stage): 'wall_ms' must be a number or null, got bool"),
    ({"action": "overlay", "requested": "LABEL=o", "origin": "o", "lower": "/l", "upper": "/u",
      "fstab": "f", "volume": {"label": "o"}},
     "actions[1] (overlay): 'volume': 'device' is missing"),
])
def test_a_malformed_record_names_the_file_the_record_and_the_key(
        tmp_path: Path, record: Any, message: str) -> None:
    doc = {**OLD_SIDE, "actions": [OLD_SIDE["actions"][0], record]}
    (tmp_path / "rootswitch.json").write_text(json.dumps(doc))
    with pytest.raises(SeedCacheError) as raised:
        read_recorded_actions(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'rootswitch.json'}: {message}")


def test_a_malformed_manifest_is_named_too(tmp_path: Path) -> None:
    (tmp_path / "seed.json").write_text(json.dumps({**OLD_SEED, "actions": {"action": "x"}}))
    with pytest.raises(SeedCacheError, match=r"seed\.json: actions: expected a list, got dict"):
        read_seed_cache(tmp_path)
    (tmp_path / "seed.json").write_text(json.dumps(
        {**OLD_SEED, "problems": [{"where": "x", "message": "y", "level": "fatal"}]}))
    with pytest.raises(SeedCacheError, match=r"seed\.json: problems\[0\]: .*'fatal'"):
        read_recorded_actions(tmp_path)
    (tmp_path / "seed.json").write_text("[1]")
    with pytest.raises(SeedCacheError, match=r"seed\.json: expected a JSON object, got list"):
        read_seed_cache(tmp_path)


def test_actions_from_json_without_a_file() -> None:
    assert actions_from_json(None) == []
    with pytest.raises(ActionError, match=r"actions\[0\] \(takeover\): 'reason' is missing"):
        actions_from_json([{"action": "takeover", "device": "/dev/vdb"}])
