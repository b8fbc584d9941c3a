from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import resolv_conf
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target


def _run(root: Path, cfg: dict[str, Any]) -> list[Any]:
    """Run the module on ``root``, made a target first unless the test already did."""
    target = TargetRoot(root) if (root / "etc").exists() else make_target(root)
    ctx = make_ctx(target, cfg)
    resolv_conf.MODULE.handle(ctx)
    return ctx.problems


def test_every_key_written(tmp_path: Path) -> None:
    problems = _run(tmp_path, {"manage_resolv_conf": True, "resolv_conf": {
        "nameservers": ["10.0.0.2", "fd00::53"], "searchdomains": ["example.org", "lab"],
        "domain": "example.org", "sortlist": ["10.0.0.0/255.0.0.0", "192.0.2.1"],
        "options": {"rotate": True, "timeout": 2, "edns0": False}}})
    assert problems == []
    assert (tmp_path / "etc/resolv.conf").read_text().splitlines() == [
        "# Written by bootseed from 'resolv_conf'", "nameserver 10.0.0.2", "nameserver fd00::53",
        "domain example.org", "search example.org lab",
        "sortlist 10.0.0.0/255.0.0.0 192.0.2.1", "options rotate timeout:2"]


@pytest.mark.parametrize("manage", [False, None])
def test_not_managed_writes_nothing(tmp_path: Path, manage: bool | None) -> None:
    cfg: dict[str, Any] = {"resolv_conf": {"nameservers": ["10.0.0.2"]}}
    if manage is not None:
        cfg["manage_resolv_conf"] = manage
    assert _run(tmp_path, cfg) == []
    assert not (tmp_path / "etc/resolv.conf").exists()


@pytest.mark.parametrize("link", ["../run/systemd/resolve/stub-resolv.conf",
                                  "/run/systemd/resolve/resolv.conf"])
def test_systemd_resolved_link_is_reported_and_left(tmp_path: Path, link: str) -> None:
    make_target(tmp_path)
    os.symlink(link, tmp_path / "etc/resolv.conf")
    (problem,) = _run(tmp_path, {"manage_resolv_conf": True,
                                 "resolv_conf": {"nameservers": ["10.0.0.2"]}})
    assert problem.level is Level.WARNING and "systemd-resolved" in problem.message
    assert os.readlink(tmp_path / "etc/resolv.conf") == link
    assert not (tmp_path / "run").exists()


def test_other_link_is_replaced_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "host-resolv.conf"
    outside.write_text("nameserver 1.1.1.1\n")
    root = tmp_path / "root"
    root.mkdir()
    make_target(root)
    os.symlink(str(outside), root / "etc/resolv.conf")
    assert _run(root, {"manage_resolv_conf": True,
                       "resolv_conf": {"nameservers": ["10.0.0.2"]}}) == []
    assert outside.read_text() == "nameserver 1.1.1.1\n"
    assert "nameserver 10.0.0.2" in (root / "etc/resolv.conf").read_text()


def test_bad_entries_reported_by_place_and_the_rest_written(tmp_path: Path) -> None:
    problems = _run(tmp_path, {"manage_resolv_conf": True, "resolv_conf": {
        "nameservers": ["10.0.0.1", "dns.example", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
        "searchdomains": ["ok.example", "bad domain"], "domain": "x\nnameserver 6.6.6.6",
        "sortlist": ["10.0.0.0/nope"], "options": {"rotate": "yes", "ndots": 2,
                                                   "bad option": True}}})
    assert [(p.where, p.level) for p in problems] == [
        ("resolv_conf.nameservers[1]", Level.ERROR),
        ("resolv_conf.nameservers", Level.WARNING),
        ("resolv_conf.domain", Level.ERROR),
        ("resolv_conf.searchdomains[1]", Level.ERROR),
        ("resolv_conf.sortlist[0]", Level.ERROR),
        ("resolv_conf.options.rotate", Level.ERROR),
        ("resolv_conf.options", Level.ERROR)]
    assert (tmp_path / "etc/resolv.conf").read_text().splitlines()[1:] == [
        "nameserver 10.0.0.1", "nameserver 10.0.0.2", "nameserver 10.0.0.3",
        "search ok.example", "options ndots:2"]


@pytest.mark.parametrize(("cfg", "where"), [
    ({"manage_resolv_conf": "yes", "resolv_conf": {}}, "manage_resolv_conf"),
    ({"manage_resolv_conf": True}, "resolv_conf"),
    ({"manage_resolv_conf": True, "resolv_conf": ["10.0.0.2"]}, "resolv_conf"),
])
def test_bad_shapes_write_nothing(tmp_path: Path, cfg: dict[str, Any], where: str) -> None:
    (problem,) = _run(tmp_path, cfg)
    assert problem.where == where
    assert not (tmp_path / "etc/resolv.conf").exists()
