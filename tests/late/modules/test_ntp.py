from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import ntp
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target

# bookworm's chrony.conf, the lines that matter here.
CHRONY_CONF = """pool 2.debian.pool.ntp.org iburst
sourcedir /run/chrony-dhcp
sourcedir /etc/chrony/sources.d
confdir /etc/chrony/conf.d
"""


def _target(root: Path, *clients: str) -> TargetRoot:
    target = make_target(root)
    for name in clients:
        target.write(ntp.CLIENTS[name].binaries[0], "#!/bin/sh\n", mode=0o755)
    if "chrony" in clients:
        target.write(ntp.CHRONY_CONF, CHRONY_CONF)
    return target


def _run(target: TargetRoot, cfg: Any) -> list[Any]:
    ctx = make_ctx(target, {"ntp": cfg})
    ntp.MODULE.handle(ctx)
    return ctx.problems


def test_auto_prefers_chrony(tmp_path: Path) -> None:
    target = _target(tmp_path, "chrony", "systemd-timesyncd")
    assert _run(target, {"servers": ["10.0.0.1", "ntp.example.org"],
                         "pools": ["pool.example.org"]}) == []
    assert target.read_text(ntp.CHRONY_SOURCES).splitlines()[1:] == [
        "server 10.0.0.1 iburst", "server ntp.example.org iburst", "pool pool.example.org iburst"]
    assert not target.exists(ntp.TIMESYNCD_DROPIN)
    assert target.read_text(ntp.CHRONY_CONF) == CHRONY_CONF


def test_auto_falls_back_to_timesyncd(tmp_path: Path) -> None:
    target = _target(tmp_path, "systemd-timesyncd")
    assert _run(target, {"ntp_client": "auto", "servers": ["fd00::1"],
                         "pools": ["0.pool.example"]}) == []
    assert target.read_text(ntp.TIMESYNCD_DROPIN).splitlines()[1:] == [
        "[Time]", "NTP=fd00::1 0.pool.example"]


def test_ntp_client_replaces_server_and_pool_lines(tmp_path: Path) -> None:
    target = _target(tmp_path, "ntp")
    target.write("/etc/ntpsec/ntp.conf", "driftfile /var/lib/ntpsec/ntp.drift\n"
                 "pool 0.debian.pool.ntp.org iburst\nrestrict default kod\n")
    assert _run(target, {"ntp_client": "ntp", "servers": ["192.0.2.7"]}) == []
    assert target.read_text("/etc/ntpsec/ntp.conf").splitlines() == [
        "driftfile /var/lib/ntpsec/ntp.drift", "restrict default kod",
        "# Servers from bootseed 'ntp'", "server 192.0.2.7 iburst"]


def test_null_and_no_servers_keep_the_packaged_defaults(tmp_path: Path) -> None:
    target = _target(tmp_path, "chrony")
    assert _run(target, None) == []
    assert not target.exists(ntp.CHRONY_SOURCES)


def test_disabled_does_nothing_even_without_a_client(tmp_path: Path) -> None:
    target = _target(tmp_path)
    assert _run(target, {"enabled": False, "servers": ["10.0.0.1"]}) == []
    assert not target.exists(ntp.CHRONY_SOURCES) and not target.exists(ntp.TIMESYNCD_DROPIN)


def test_no_client_installed_is_reported(tmp_path: Path) -> None:
    target = _target(tmp_path)
    (problem,) = _run(target, {"servers": ["10.0.0.1"]})
    assert problem.where == "ntp" and "no NTP client" in problem.message
    assert not target.exists(ntp.CHRONY_SOURCES) and not target.exists(ntp.TIMESYNCD_DROPIN)


def test_named_client_not_installed_is_configured_with_a_warning(tmp_path: Path) -> None:
    target = _target(tmp_path, "systemd-timesyncd")
    (problem,) = _run(target, {"ntp_client": "chrony", "servers": ["10.0.0.1"]})
    assert (problem.where, problem.level) == ("ntp.ntp_client", Level.WARNING)
    assert "server 10.0.0.1 iburst" in target.read_text(ntp.CHRONY_SOURCES)


def test_bad_entries_are_left_out_and_the_rest_applied(tmp_path: Path) -> None:
    target = _target(tmp_path, "chrony")
    problems = _run(target, {"servers": ["10.0.0.1", "bad host", "x\nserver evil"],
                             "pools": "pool.example", "config": {"confpath": "/x"}})
    assert sorted((p.where, p.level) for p in problems) == [
        ("ntp.config", Level.NOTE), ("ntp.pools", Level.ERROR),
        ("ntp.servers[1]", Level.ERROR), ("ntp.servers[2]", Level.ERROR)]
    assert target.read_text(ntp.CHRONY_SOURCES).splitlines()[1:] == ["server 10.0.0.1 iburst"]


@pytest.mark.parametrize(("cfg", "where"), [({"ntp_client": "openntpd"}, "ntp.ntp_client"),
                                            ("chrony", "ntp")])
def test_bad_client_or_shape_configures_nothing(tmp_path: Path, cfg: Any, where: str) -> None:
    target = _target(tmp_path, "chrony")
    (problem,) = _run(target, cfg)
    assert problem.where == where and not target.exists(ntp.CHRONY_SOURCES)


def test_chrony_conf_without_sourcedir_is_warned_about(tmp_path: Path) -> None:
    target = _target(tmp_path, "chrony")
    target.write(ntp.CHRONY_CONF, "pool 2.debian.pool.ntp.org iburst\n")
    (problem,) = _run(target, {"servers": ["10.0.0.1"]})
    assert problem.level is Level.WARNING and "sourcedir" in problem.message
