from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.late.hostnames import HostnameError, choose
from bootseed.late.modules import set_hostname, update_etc_hosts, update_hostname
from bootseed.late.modules.base import Frequency, InstanceInfo, ModuleContext
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target

SEEDED = InstanceInfo("i-abc", local_hostname="seeded")


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    t = make_target(tmp_path / "root")
    t.write("/etc/hostname", "debian-image\n")
    t.write("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 debian-image\n\n# mine\n10.0.0.5 db\n")
    return t


def ctx(target: TargetRoot, cfg: dict, instance: InstanceInfo = SEEDED) -> ModuleContext:
    return make_ctx(target, cfg, "hostname", instance=instance)


def names(cfg: dict, instance: InstanceInfo) -> tuple[str, str]:
    c = choose(cfg, instance)
    return c.hostname, c.fqdn


def test_choose_rules() -> None:
    none = InstanceInfo("i")
    assert names({"fqdn": "a.example.org"}, none) == ("a", "a.example.org")
    assert names({"fqdn": "a.example.org", "hostname": "b"}, none) == ("b", "a.example.org")
    assert names({"hostname": "c.example.net"}, none) == ("c", "c.example.net")
    assert names({"hostname": "d"}, none) == ("d", "d.localdomain")
    assert names({}, InstanceInfo("i", "e.cloud.internal")) == ("e", "e.cloud.internal")
    assert choose({}, none).is_default
    with pytest.raises(HostnameError, match="hostname: 'bad_name!'"):
        choose({"hostname": "bad_name!"}, none)


def test_set_hostname_from_seed_and_config(target: TargetRoot) -> None:
    assert not target.is_host
    set_hostname.MODULE.handle(ctx(target, {}))
    assert target.read_text("/etc/hostname") == "seeded\n"
    set_hostname.MODULE.handle(
        ctx(
            target,
            {"hostname": "web1", "fqdn": "web1.example.com", "prefer_fqdn_over_hostname": True},
        )
    )
    assert target.read_text("/etc/hostname") == "web1.example.com\n"
    record = target.root / "var/lib/bootseed/instances/i-test/set-hostname"
    assert json.loads(record.read_text()) == {"hostname": "web1", "fqdn": "web1.example.com"}
    # The running hostname of the host is not touched for a non-host target.
    assert socket.gethostname() != "web1.example.com"


def test_preserve_and_create_hostname_file(tmp_path: Path) -> None:
    t = make_target(tmp_path / "r")
    set_hostname.MODULE.handle(ctx(t, {"preserve_hostname": True}))
    assert not t.path("/etc/hostname").exists()
    set_hostname.MODULE.handle(ctx(t, {"create_hostname_file": False}))
    assert not t.path("/etc/hostname").exists()
    # A name already set for this instance is not set again...
    set_hostname.MODULE.handle(ctx(t, {}))
    assert not t.path("/etc/hostname").exists()
    # ...a new one is.
    set_hostname.MODULE.handle(ctx(t, {"hostname": "fresh"}))
    assert t.read_text("/etc/hostname") == "fresh\n"


def test_update_hostname_respects_admin_change(target: TargetRoot) -> None:
    assert update_hostname.MODULE.frequency is Frequency.PER_BOOT
    set_hostname.MODULE.handle(ctx(target, {"hostname": "one"}))
    # Next boot, the config names a new host: the file still holds what we wrote, so update.
    update_hostname.MODULE.handle(ctx(target, {"hostname": "two"}))
    assert target.read_text("/etc/hostname") == "two\n"
    # The admin renames the machine by hand; later boots leave that alone.
    target.write("/etc/hostname", "admins-choice\n")
    update_hostname.MODULE.handle(ctx(target, {"hostname": "three"}))
    assert target.read_text("/etc/hostname") == "admins-choice\n"
    update_hostname.MODULE.handle(ctx(target, {"hostname": "three"}))
    assert target.read_text("/etc/hostname") == "admins-choice\n"


def test_update_hostname_creates_missing_file(tmp_path: Path) -> None:
    t = make_target(tmp_path / "r")
    update_hostname.MODULE.handle(ctx(t, {}))
    assert t.read_text("/etc/hostname") == "seeded\n"
    before = t.path("/etc/hostname").stat().st_mtime_ns
    update_hostname.MODULE.handle(ctx(t, {}))
    assert t.path("/etc/hostname").stat().st_mtime_ns == before


def test_etc_hosts_modes(target: TargetRoot) -> None:
    original = target.read_text("/etc/hosts")
    update_etc_hosts.MODULE.handle(ctx(target, {}))
    assert target.read_text("/etc/hosts") == original
    cfg = {"manage_etc_hosts": "localhost", "fqdn": "app.example.com"}
    for _ in range(2):
        update_etc_hosts.MODULE.handle(ctx(target, cfg))
        assert target.read_text("/etc/hosts") == original.replace(
            "127.0.1.1 debian-image", "127.0.1.1 app.example.com app"
        )
    update_etc_hosts.MODULE.handle(ctx(target, {"manage_etc_hosts": True, "hostname": "h"}))
    text = target.read_text("/etc/hosts")
    assert "127.0.1.1 h.localdomain h\n" in text and "10.0.0.5 db" not in text
    assert "::1 localhost ip6-localhost ip6-loopback\n" in text
    with pytest.raises(ValueError, match="manage_etc_hosts: 'yes please'"):
        update_etc_hosts.MODULE.handle(ctx(target, {"manage_etc_hosts": "yes please"}))


def test_localhost_line_added_when_missing(tmp_path: Path) -> None:
    t = make_target(tmp_path / "r")
    t.write("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n")
    update_etc_hosts.MODULE.handle(ctx(t, {"manage_etc_hosts": "localhost"}))
    assert t.read_text("/etc/hosts") == (
        "127.0.0.1 localhost\n127.0.1.1 seeded.localdomain seeded\n::1 localhost\n"
    )


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root")
def test_running_hostname_set_in_private_uts_namespace() -> None:
    # The real sethostname(2) path, inside a UTS namespace of its own: the host's name is
    # untouched.
    before = socket.gethostname()
    code = (
        "import socket; from bootseed.late.hostnames import apply_running; "
        "apply_running('ns-test-host'); print(socket.gethostname())"
    )
    proc = subprocess.run(
        ["unshare", "--uts", sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "ns-test-host"
    assert socket.gethostname() == before
