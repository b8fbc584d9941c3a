"""Network configuration on real boots (issue 17, boot tests 1 and 2). Two guests at once:

- **config drive**: two NICs, ``network_data.json`` on the ``config-2`` disc: the lab NIC
  by DHCP (plus a default route: the lab's restricted network offers no gateway), the
  second NIC with a static IPv4 address, an MTU, a network route through a gateway on its
  subnet, a static IPv6 address, and a nameserver;
- **NoCloud v2**: three NICs, ``network-config`` v2 on a ``cidata`` disc: the lab NIC by
  DHCP with a default route, NICs 2 and 3 matched by MAC and renamed (``set-name``) into
  an active-backup bond with a static address, and a VLAN on the bond with its own.

Both must finish bootseed with status done (the report comes over the serial console,
whatever the NICs do). What each guest's networkd made of the files is read from the
report's ``ip -j addr``/``ip -j route`` and from probes (``networkctl``, ``ip -d link``,
``/proc/net/bonding``) the seeds install with ``write_files``.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from bootseed.image_builder import labnet
from bootseed.image_builder.guest.report import PROBE_DIR
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
NETWORK_DIR = "/etc/systemd/network"
NIC2_MAC = labnet.extra_nic_mac(1)
NIC3_MAC = labnet.extra_nic_mac(2)

# The config-drive guest's second NIC.
STATIC4 = "10.1.0.10"
STATIC6 = "fd00:1::10"
ROUTE_TO = "10.99.0.0/16"
ROUTE_VIA = "10.1.0.2"  # QEMU's side of extra NIC 1's network
NIC2_MTU = 1400
NAMESERVER = "10.1.0.3"

# The NoCloud guest's bond and VLAN.
BOND_ADDR = "10.1.0.20"
VLAN_ID = 42
VLAN_ADDR = "10.42.0.20"

# Each probe prints what it checks; the report has its output by file name.
PROBES = {
    "10-wait-online": "/lib/systemd/systemd-networkd-wait-online --timeout=60; echo rc=$?\n",
    "20-networkctl-list": "networkctl list --no-pager --no-legend\n",
    "30-networkctl-status": "for d in /sys/class/net/*/; do\n"
                            "  l=$(basename \"$d\"); echo \"=== $l\"\n"
                            "  networkctl status --no-pager \"$l\" || exit 1\n"
                            "done\n",
    "40-ip-detail": "ip -d -j link show\n",
    "50-bonding": "cat /proc/net/bonding/* 2>/dev/null || true\n",
    "60-network-dir": f"ls {NETWORK_DIR}\n",
}


def _user_data(name: str) -> str:
    files = "".join(
        f"  - path: {PROBE_DIR}/{probe}\n    permissions: '0755'\n"
        f"    content: |\n      #!/bin/sh\n"
        + "".join(f"      {line}\n" for line in body.splitlines())
        for probe, body in PROBES.items())
    return f"#cloud-config\nhostname: {name}\nwrite_files:\n{files}"


def _config_drive(tmp_path: Path) -> Path:
    seed = tmp_path / "config-drive"
    seed.mkdir()
    (seed / "meta_data.json").write_text(json.dumps({
        "uuid": "0d9a4b61-4e7b-4a8c-9b55-3a1f0c2e7d01", "hostname": "netcfg-cd",
        "name": "netcfg-cd"}))
    (seed / "user_data").write_text(_user_data("netcfg-cd"))
    (seed / "network_data.json").write_text(json.dumps({
        "links": [
            {"id": "lab0", "type": "phy", "ethernet_mac_address": labnet.LAB_MAC},
            {"id": "nic2", "type": "phy", "ethernet_mac_address": NIC2_MAC,
             "mtu": NIC2_MTU},
        ],
        "networks": [
            {"id": "lab-dhcp", "type": "ipv4_dhcp", "link": "lab0",
             "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                         "gateway": labnet.GATEWAY}]},
            {"id": "nic2-v4", "type": "ipv4", "link": "nic2", "ip_address": STATIC4,
             "netmask": "255.255.255.0",
             "routes": [{"network": "10.99.0.0", "netmask": "255.255.0.0",
                         "gateway": ROUTE_VIA}]},
            {"id": "nic2-v6", "type": "ipv6", "link": "nic2", "ip_address": STATIC6,
             "netmask": "ffff:ffff:ffff:ffff::"},
        ],
        "services": [{"type": "dns", "address": NAMESERVER}],
    }))
    return seed


def _cidata(tmp_path: Path) -> Path:
    seed = tmp_path / "cidata"
    seed.mkdir()
    (seed / "meta-data").write_text("instance-id: iid-netcfg-v2\nlocal-hostname: netcfg-v2\n")
    (seed / "user-data").write_text(_user_data("netcfg-v2"))
    (seed / "network-config").write_text(
        "version: 2\n"
        "ethernets:\n"
        "  lab0:\n"
        f"    match: {{macaddress: '{labnet.LAB_MAC}'}}\n"
        "    dhcp4: true\n"
        f"    routes: [{{to: default, via: {labnet.GATEWAY}}}]\n"
        "  nicb1:\n"
        f"    match: {{macaddress: '{NIC2_MAC}'}}\n"
        "    set-name: nicb1\n"
        "  nicb2:\n"
        f"    match: {{macaddress: '{NIC3_MAC}'}}\n"
        "    set-name: nicb2\n"
        "bonds:\n"
        "  bond0:\n"
        "    interfaces: [nicb1, nicb2]\n"
        "    parameters: {mode: active-backup, mii-monitor-interval: 100, primary: nicb1}\n"
        f"    addresses: [{BOND_ADDR}/24]\n"
        "vlans:\n"
        f"  vlan{VLAN_ID}:\n"
        f"    id: {VLAN_ID}\n"
        "    link: bond0\n"
        f"    addresses: [{VLAN_ADDR}/24]\n")
    return seed


def _diagnose(result: BootResult) -> str:
    report = result.report
    extra = ""
    if report is not None:
        extra = (f"\n--- probes ---\n{json.dumps(report.raw.get('probes'), indent=1)[-6000:]}"
                 f"\n--- networkd ---\n{report.raw.get('networkd_journal', '')[-3000:]}")
    return f"{result.summary()}{extra}\n--- console tail ---\n{result.console_text()[-3000:]}"


def _probe(result: BootResult, name: str) -> str:
    assert result.report is not None
    entry = (result.report.raw.get("probes") or {}).get(name) or {}
    assert entry.get("rc") == 0, (name, entry, _diagnose(result))
    return str(entry.get("stdout", ""))


def _links(result: BootResult) -> dict[str, dict[str, Any]]:
    """``ip -j addr`` by interface name."""
    assert result.report is not None
    return {link["ifname"]: link for link in result.report.raw.get("addresses") or []}


def _mac(link: dict[str, Any]) -> str:
    """The NIC's own MAC: a bond gives its members its own, and ip shows theirs as permaddr."""
    return str(link.get("permaddr") or link.get("address"))


def _by_mac(result: BootResult, mac: str) -> dict[str, Any]:
    found = [link for link in _links(result).values()
             if _mac(link) == mac and "master" not in link]
    assert len(found) == 1, (mac, list(_links(result)), _diagnose(result))
    return found[0]


def _addresses(link: dict[str, Any]) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])}


def _networkctl_states(result: BootResult) -> dict[str, tuple[str, str]]:
    """``networkctl list``: link name -> (operational state, setup state)."""
    states: dict[str, tuple[str, str]] = {}
    for line in _probe(result, "20-networkctl-list").splitlines():
        fields = line.split()
        if len(fields) >= 5:
            states[fields[1]] = (fields[3], fields[4])
    return states


def _network_files(result: BootResult) -> set[str]:
    return {name for name in _probe(result, "60-network-dir").split()
            if name.startswith("10-bootseed-")}


def _check_done(result: BootResult) -> None:
    assert result.report is not None and result.ok, _diagnose(result)
    modules = {m.get("name"): m.get("status") for m in result.report.modules}
    assert modules.get("network_config") == "ok", modules
    # A rename that did not happen would be a warning from the module: none.
    assert not [p for p in result.report.problems if "rename" in str(p)], result.report.problems
    assert "rc=0" in _probe(result, "10-wait-online"), _diagnose(result)


def _check_config_drive(result: BootResult) -> None:
    _check_done(result)
    report = result.report
    assert report is not None
    assert (report.status or {}).get("source") == "configdrive", _diagnose(result)
    assert _network_files(result) == {"10-bootseed-lab0.network",
                                      "10-bootseed-nic2.network"}, _diagnose(result)
    lab = _by_mac(result, labnet.LAB_MAC)
    nic2 = _by_mac(result, NIC2_MAC)
    # NIC 1 by DHCP: QEMU's first lease, marked dynamic; NIC 2 exactly the static ones.
    lab_v4 = [a for a in lab["addr_info"] if a["family"] == "inet"]
    assert [(a["local"], a.get("dynamic")) for a in lab_v4] == [(labnet.DHCP_START, True)], lab
    assert {f"{STATIC4}/24", f"{STATIC6}/64"} <= _addresses(nic2), nic2
    assert not any(a.get("dynamic") for a in nic2["addr_info"]), nic2
    assert nic2["mtu"] == NIC2_MTU and lab["mtu"] == 1500, (nic2, lab)
    v6 = [a for a in nic2["addr_info"] if a["local"] == STATIC6]
    assert v6 and not v6[0].get("tentative") and not v6[0].get("dadfailed"), v6
    routes = report.raw.get("routes") or []
    assert {"dst": "default", "gateway": labnet.GATEWAY, "dev": lab["ifname"]}.items() <= \
        next((r for r in routes if r.get("dst") == "default"), {}).items(), routes
    assert [(r.get("gateway"), r.get("dev")) for r in routes if r.get("dst") == ROUTE_TO] == \
        [(ROUTE_VIA, nic2["ifname"])], routes
    assert any(r.get("dst") == "10.1.0.0/24" and r.get("dev") == nic2["ifname"]
               for r in routes), routes
    states = _networkctl_states(result)
    assert states.get(lab["ifname"]) == ("routable", "configured"), states
    assert states.get(nic2["ifname"]) == ("routable", "configured"), states
    status = _probe(result, "30-networkctl-status")
    section = status.split(f"=== {nic2['ifname']}\n", 1)[1].split("\n=== ", 1)[0]
    assert "10-bootseed-nic2.network" in section and NAMESERVER in section, section
    assert STATIC4 in section and STATIC6 in section, section
    files = {path: (report.file_bytes(path) or b"").decode()
             for path in (f"{NETWORK_DIR}/10-bootseed-lab0.network",
                          f"{NETWORK_DIR}/10-bootseed-nic2.network")}
    lab_file, nic2_file = files.values()
    assert f"PermanentMACAddress={labnet.LAB_MAC}" in lab_file and "DHCP=ipv4" in lab_file, lab_file
    assert f"PermanentMACAddress={NIC2_MAC}" in nic2_file and f"MTUBytes={NIC2_MTU}" in nic2_file
    assert f"Destination={ROUTE_TO}" in nic2_file and f"DNS={NAMESERVER}" in nic2_file


def _check_nocloud_v2(result: BootResult) -> None:
    _check_done(result)
    report = result.report
    assert report is not None
    assert (report.status or {}).get("source") == "nocloud", _diagnose(result)
    assert _network_files(result) == {
        "10-bootseed-lab0.network", "10-bootseed-nicb1.link", "10-bootseed-nicb1.network",
        "10-bootseed-nicb2.link", "10-bootseed-nicb2.network", "10-bootseed-bond0.netdev",
        "10-bootseed-bond0.network", f"10-bootseed-vlan{VLAN_ID}.netdev",
        f"10-bootseed-vlan{VLAN_ID}.network"}, _diagnose(result)
    links = _links(result)
    # set-name renamed both NICs (found by their MACs); both are enslaved to the bond.
    assert _mac(links.get("nicb1", {})) == NIC2_MAC, (list(links), _diagnose(result))
    assert _mac(links.get("nicb2", {})) == NIC3_MAC, list(links)
    assert links["nicb1"].get("master") == "bond0" and links["nicb2"].get("master") == "bond0"
    bond = links.get("bond0")
    assert bond is not None and f"{BOND_ADDR}/24" in _addresses(bond), bond
    vlan = links.get(f"vlan{VLAN_ID}")
    assert vlan is not None and vlan.get("link") == "bond0", vlan
    assert f"{VLAN_ADDR}/24" in _addresses(vlan), vlan
    detail = {link["ifname"]: link for link in json.loads(_probe(result, "40-ip-detail"))}
    vlan_info = detail[f"vlan{VLAN_ID}"]["linkinfo"]
    assert vlan_info["info_kind"] == "vlan" and vlan_info["info_data"]["id"] == VLAN_ID
    bond_info = detail["bond0"]["linkinfo"]
    assert bond_info["info_kind"] == "bond", bond_info
    assert bond_info["info_data"]["mode"] == "active-backup", bond_info
    # networkd kept each member on its own file when the bond gave it the bond's MAC.
    journal = report.raw.get("networkd_journal") or ""
    assert "Reconfiguring with" not in journal, journal
    bonding = _probe(result, "50-bonding")
    assert "Slave Interface: nicb1" in bonding and "Slave Interface: nicb2" in bonding
    assert "Primary Slave: nicb1" in bonding, bonding
    lab = _by_mac(result, labnet.LAB_MAC)
    routes = report.raw.get("routes") or []
    assert any(r.get("dst") == "default" and r.get("gateway") == labnet.GATEWAY
               and r.get("dev") == lab["ifname"] for r in routes), routes
    states = _networkctl_states(result)
    assert states.get(lab["ifname"]) == ("routable", "configured"), states
    assert states.get("bond0", ("", ""))[1] == "configured", states
    assert states.get(f"vlan{VLAN_ID}", ("", ""))[1] == "configured", states
    assert states.get("nicb1", ("", ""))[1] == "configured", states
    assert states.get("nicb2", ("", ""))[1] == "configured", states
    assert states["bond0"][0] == "routable" and states[f"vlan{VLAN_ID}"][0] == "routable"


def test_network_config_on_two_guests(lab_image: Path, tmp_path: Path) -> None:
    runs = [
        (BootLab(lab_image, tmp_path / "boots-cd"),
         BootOptions(config_drive_dir=_config_drive(tmp_path), extra_nics=1, timeout=TIMEOUT,
                     report_files=[f"{NETWORK_DIR}/10-bootseed-lab0.network",
                                   f"{NETWORK_DIR}/10-bootseed-nic2.network"])),
        (BootLab(lab_image, tmp_path / "boots-v2"),
         BootOptions(cidata_dir=_cidata(tmp_path), extra_nics=2, timeout=TIMEOUT)),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        config_drive, nocloud = pool.map(lambda run: run[0].boot(run[1]), runs)
    print(f"network config boots: config drive {config_drive.seconds:.0f}s, "
          f"NoCloud v2 {nocloud.seconds:.0f}s wall")
    _check_config_drive(config_drive)
    _check_nocloud_v2(nocloud)
    shutil.rmtree(tmp_path / "boots-cd", ignore_errors=True)
    shutil.rmtree(tmp_path / "boots-v2", ignore_errors=True)
