"""Renames done in this boot: which NICs get udev's "add" event again, and what is
reported when a NIC still has its old name afterwards."""

from __future__ import annotations

from pathlib import Path

from bootseed.contract.problems import Level
from bootseed.late.netconfig.apply import apply
from bootseed.late.netconfig.rename import Rename, nics_by_mac, plan, rename_now, unrenamed, wanted
from bootseed.late.netconfig.v2 import parse_v2
from bootseed.late.target import TargetRoot

V2 = {"version": 2, "ethernets": {
    "lab0": {"match": {"macaddress": "52:54:00:12:34:56"}, "dhcp4": True},
    "nicb1": {"match": {"macaddress": "52:54:00:12:35:01"}, "set-name": "nicb1"},
    "nicb2": {"match": {"macaddress": "52:54:00:12:35:02"}, "set-name": "nicb2"}}}


def _sys_net(tmp_path: Path, nics: dict[str, str], virtual: dict[str, str]) -> Path:
    sys_net = tmp_path / "sys-class-net"
    for name, mac in {**nics, **virtual}.items():
        (sys_net / name).mkdir(parents=True)
        (sys_net / name / "address").write_text(mac + "\n")
        if name in nics:
            (sys_net / name / "device").mkdir()
    return sys_net


def test_only_nics_found_by_mac_and_renamed_are_wanted():
    parsed = parse_v2(V2)
    assert parsed.problems == []
    assert wanted(parsed.config) == {"52:54:00:12:35:01": "nicb1",
                                     "52:54:00:12:35:02": "nicb2"}


def test_plan_renames_the_nics_that_are_here_under_another_name(tmp_path):
    sys_net = _sys_net(tmp_path, {"ens3": "52:54:00:12:34:56", "ens4": "52:54:00:12:35:01",
                                  "nicb2": "52:54:00:12:35:02"},
                       virtual={"lo": "00:00:00:00:00:00", "dummy0": "52:54:00:12:35:01"})
    present = nics_by_mac(sys_net)
    # Devices without a "device" (lo, virtual ones) are not NICs, even with a NIC's MAC.
    assert present == {"52:54:00:12:34:56": "ens3", "52:54:00:12:35:01": "ens4",
                       "52:54:00:12:35:02": "nicb2"}
    todo = plan(wanted(parse_v2(V2).config), present)
    # nicb2 already has its name; a MAC that is not here is left alone.
    assert todo == [Rename("52:54:00:12:35:01", "ens4", "nicb1")]


def test_a_rename_that_did_not_happen_is_a_warning_naming_the_nic():
    todo = [Rename("52:54:00:12:35:01", "ens4", "nicb1"),
            Rename("52:54:00:12:35:02", "ens5", "nicb2")]
    problems = unrenamed(todo, {"52:54:00:12:35:01": "nicb1", "52:54:00:12:35:02": "ens5"})
    assert [(p.where, p.level) for p in problems] == [("network rename", Level.WARNING)]
    assert problems[0].message.startswith("ens5 (52:54:00:12:35:02) is still not named nicb2")
    assert unrenamed(todo, {"52:54:00:12:35:01": "nicb1", "52:54:00:12:35:02": "nicb2"}) == []


def test_nothing_is_renamed_in_a_target_that_is_not_this_system(tmp_path):
    sys_net = _sys_net(tmp_path, {"ens4": "52:54:00:12:35:01"}, virtual={})
    target = TargetRoot(tmp_path / "root")
    (tmp_path / "root").mkdir()
    config = parse_v2(V2).config
    assert rename_now(target, config, sys_net) == []
    applied = apply(target, config)
    assert applied.problems == [] and applied.warnings == []
    assert "/etc/systemd/network/10-bootseed-nicb1.link" in applied.written
    assert (sys_net / "ens4").is_dir()
