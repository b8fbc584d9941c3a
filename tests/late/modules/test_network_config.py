"""network_config: the seed's network config, the fallback and the switches that turn it off,
on real target trees (a fake ``/sys/class/net`` inside a ``--root`` target)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.contract.cmdline import parse as parse_kernel
from bootseed.contract.problems import Level
from bootseed.late.model import InstanceInfo
from bootseed.late.modules.base import ModuleContext
from bootseed.late.modules.network_config import MODULE, NetworkConfigError
from bootseed.late.netconfig.fallback import Nic, choose_nic, matches
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx

NETDIR = "etc/systemd/network"
V2 = b"""network:
  version: 2
  ethernets:
    eth0:
      match: {macaddress: "52:54:00:00:00:01"}
      set-name: eth0
      dhcp4: true
"""
LAB_FILE = """[Match]
Name=en* eth*
KernelCommandLine=bootseed.lab=1

[Network]
DHCP=ipv4
"""


def ctx_for(root: Path, cfg: dict[str, object] | None = None,
            network_config: bytes | None = None, source: str = "nocloud",
            networkd: bool = True) -> ModuleContext:
    if networkd:
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "systemd-networkd.service").symlink_to(
            "/lib/systemd/system/systemd-networkd.service")
    ctx = make_ctx(TargetRoot(root), cfg or {}, name="network_config",
                   instance=InstanceInfo(instance_id="i-test", source=source))
    if network_config is not None:
        ctx.payloads = {"network-config": network_config}
    return ctx


def written(root: Path) -> dict[str, str]:
    directory = root / NETDIR
    if not directory.is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def plant_nic(root: Path, name: str, mac: str, index: int, carrier: str | None = None,
              kind: str = "1") -> None:
    nic = root / "sys/class/net" / name
    nic.mkdir(parents=True)
    (nic / "address").write_text(mac + "\n")
    (nic / "ifindex").write_text(f"{index}\n")
    (nic / "type").write_text(kind + "\n")
    if carrier is not None:
        (nic / "carrier").write_text(carrier + "\n")


def test_seed_network_config_is_written(tmp_path: Path):
    ctx = ctx_for(tmp_path, network_config=V2)
    MODULE.handle(ctx)
    assert set(written(tmp_path)) == {"10-bootseed-eth0.link", "10-bootseed-eth0.network"}
    assert "DHCP=ipv4" in written(tmp_path)["10-bootseed-eth0.network"]
    assert ctx.problems == []


def test_a_new_config_replaces_our_earlier_files_only(tmp_path: Path):
    (tmp_path / NETDIR).mkdir(parents=True)
    (tmp_path / NETDIR / "10-bootseed-old0.network").write_text("[Match]\nName=old0\n")
    (tmp_path / NETDIR / "50-admin.network").write_text("[Match]\nName=x\n")
    MODULE.handle(ctx_for(tmp_path, network_config=V2))
    assert set(written(tmp_path)) == {"10-bootseed-eth0.link", "10-bootseed-eth0.network",
                                      "50-admin.network"}


@pytest.mark.parametrize(("payload", "place"), [
    (b"version: 2\nwifis: {wl0: {}}\n", "network-config: wifis"),
    (b"version: 2\nethernets: {eth0: {dhcp4: true, wakeonlan: true}}\n",
     "network-config: ethernets.eth0.wakeonlan"),
    (b"version: 2\nethernets: {eth0: {addresses: [192.0.2.300/24]}}\n",
     "network-config: ethernets.eth0.addresses[0]"),
    (b"version: 2\nbonds: {bond0: {interfaces: [eth9]}}\n", "network-config: bond0: members"),
    (b"version: 2\nethernets: {e: {set-name: eth0}}\n", "network-config: ethernets.e.set-name"),
    (b"version: 1\nconfig: [{type: infiniband, name: ib0}]\n", "network-config: config[0].type"),
    (b"version: 1\nconfig: [{type: physical, name: eth0, subnets: [{type: static}]}]\n",
     "network-config: config[0] (eth0).subnets[0].address"),
    (b"version: 3\n", "network-config: version"),
    (b"version: 2\nethernets: {\"eth0\\nDNS=1.1.1.1\": {}}\n", "network-config: ethernets.eth0"),
])
def test_a_problem_is_named_and_nothing_is_written(tmp_path: Path, payload: bytes, place: str):
    (tmp_path / NETDIR).mkdir(parents=True)
    (tmp_path / NETDIR / "10-bootseed-eth0.network").write_text("earlier\n")
    ctx = ctx_for(tmp_path, network_config=payload)
    with pytest.raises(NetworkConfigError):
        MODULE.handle(ctx)
    assert any(p.where.startswith(place) and p.level is Level.ERROR for p in ctx.problems), \
        ctx.problems
    assert written(tmp_path) == {"10-bootseed-eth0.network": "earlier\n"}


def test_kernel_command_line_turns_it_off(tmp_path: Path):
    ctx = ctx_for(tmp_path, network_config=V2)
    ctx.kernel = parse_kernel("quiet network-config=disabled")
    MODULE.handle(ctx)
    assert written(tmp_path) == {}
    assert "kernel command line" in ctx.problems[0].message
    assert ctx.problems[0].level is Level.NOTE


def test_cloud_config_turns_it_off(tmp_path: Path):
    ctx = ctx_for(tmp_path, cfg={"network": {"config": "disabled"}}, network_config=V2)
    MODULE.handle(ctx)
    assert written(tmp_path) == {}
    assert "cloud-config" in ctx.problems[0].message


def test_the_targets_cloud_cfg_d_turns_it_off(tmp_path: Path):
    cfg_d = tmp_path / "etc/cloud/cloud.cfg.d"
    cfg_d.mkdir(parents=True)
    (cfg_d / "99-disable-network-config.cfg").write_text("network: {config: disabled}\n")
    ctx = ctx_for(tmp_path, network_config=V2)
    MODULE.handle(ctx)
    assert written(tmp_path) == {}
    assert "/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg" in ctx.problems[0].message


def test_the_payload_itself_can_say_disabled(tmp_path: Path):
    ctx = ctx_for(tmp_path, network_config=b"network:\n  config: disabled\n")
    MODULE.handle(ctx)
    assert written(tmp_path) == {}
    assert ctx.problems[0].level is Level.NOTE


def test_fallback_on_the_first_nic_of_the_targets_sysfs(tmp_path: Path):
    plant_nic(tmp_path, "lo", "00:00:00:00:00:00", 1, kind="772")
    plant_nic(tmp_path, "ens4", "52:54:00:00:00:04", 3)
    plant_nic(tmp_path, "ens3", "52:54:00:00:00:03", 2)
    ctx = ctx_for(tmp_path)
    MODULE.handle(ctx)
    assert written(tmp_path) == {"10-bootseed-ens3.network": (
        "[Match]\nPermanentMACAddress=52:54:00:00:00:03\nType=ether\n\n[Network]\nDHCP=ipv4\n")}


def test_no_sysfs_in_a_root_target_is_logged(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture):
    ctx = ctx_for(tmp_path)
    with caplog.at_level("INFO"):
        MODULE.handle(ctx)
    assert written(tmp_path) == {}
    # Offline image customization: the rule, not a problem for the status.
    assert ctx.problems == []
    assert "no Ethernet NIC found" in caplog.text


def test_the_images_own_network_file_keeps_its_nic(tmp_path: Path):
    plant_nic(tmp_path, "ens3", "52:54:00:00:00:03", 2)
    (tmp_path / NETDIR).mkdir(parents=True)
    (tmp_path / NETDIR / "90-bootseed-default.network").write_text(
        "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n")
    ctx = ctx_for(tmp_path)
    MODULE.handle(ctx)
    assert set(written(tmp_path)) == {"90-bootseed-default.network"}
    assert "90-bootseed-default.network already configures ens3" in ctx.problems[0].message


def test_the_lab_file_matches_only_with_its_kernel_parameter():
    nic = Nic("ens3", "52:54:00:00:00:03", carrier=True)
    assert matches(LAB_FILE, nic, parse_kernel("quiet bootseed.lab=1"))
    assert not matches(LAB_FILE, nic, parse_kernel("quiet"))
    # A --root target: the command line that will boot it is unknown, so the image's
    # file is assumed to apply and no fallback is written over it.
    assert matches(LAB_FILE, nic, None)
    assert not matches("[Match]\nName=!en*\n", nic, None)
    assert not matches("[Match]\nMACAddress=52:54:00:00:00:99\n", nic, None)
    assert matches("[Match]\nType=ether\n", nic, None)


def test_on_the_running_system_carrier_wins():
    nics = [Nic("ens3", "52:54:00:00:00:03", False), Nic("ens4", "52:54:00:00:00:04", True)]
    assert choose_nic(nics, running=True) == nics[1]
    assert choose_nic(nics, running=False) == nics[0]
    # Links are down before networkd starts: no carrier anywhere means the first NIC.
    assert choose_nic([nics[0]], running=True) == nics[0]


def test_ec2_nic_metadata_is_used_without_a_payload(tmp_path: Path):
    ctx = ctx_for(tmp_path, source="ec2")
    ctx.payloads = {"meta-data": b'{"network": {"interfaces": {"macs": '
                                 b'{"0a:00:00:00:00:01": {"device-number": "0"}}}}}'}
    MODULE.handle(ctx)
    assert set(written(tmp_path)) == {"10-bootseed-ec2nic0.network"}


def test_a_full_network_config_in_cloud_config_is_not_applied(tmp_path: Path):
    ctx = ctx_for(tmp_path, cfg={"network": {"version": 2, "ethernets": {}}},
                  network_config=V2)
    MODULE.handle(ctx)
    assert ctx.problems[0].level is Level.WARNING
    assert set(written(tmp_path)) == {"10-bootseed-eth0.link", "10-bootseed-eth0.network"}


def test_no_fallback_when_networkd_is_not_enabled(tmp_path: Path):
    plant_nic(tmp_path, "ens3", "52:54:00:00:00:03", 2)
    ctx = ctx_for(tmp_path, networkd=False)
    MODULE.handle(ctx)
    assert written(tmp_path) == {}
    assert "systemd-networkd is not enabled" in ctx.problems[0].message


def test_seed_config_without_networkd_is_written_with_a_warning(tmp_path: Path):
    ctx = ctx_for(tmp_path, network_config=V2, networkd=False)
    MODULE.handle(ctx)
    assert set(written(tmp_path)) == {"10-bootseed-eth0.link", "10-bootseed-eth0.network"}
    assert [p.level for p in ctx.problems] == [Level.WARNING]
