"""What cannot be rendered is named, and the renderer then produces no file at all."""

from __future__ import annotations

from bootseed.late.netconfig.model import Interface, Kind, NetworkConfig, prefix_length
from bootseed.late.netconfig.networkd import render
from bootseed.late.netconfig.v1 import parse_v1
from bootseed.late.netconfig.v2 import parse_v2


def places(problems: list) -> list[str]:
    return [p.where for p in problems]


def test_renderer_names_what_it_cannot_render_and_renders_nothing():
    config = NetworkConfig([
        Interface("eth0"), Interface("eth1"), Interface("eth1"),
        Interface("bond0", Kind.BOND, members=["eth0"], primary_member="eth1"),
        Interface("br0", Kind.BRIDGE, members=["eth0"]),
        Interface("vlan5", Kind.VLAN, vlan_link="eth0"),
    ])
    rendered = render(config)
    assert rendered.files == {}
    assert places(rendered.problems) == [
        "network renderer: eth1", "network renderer: bond0", "network renderer: eth0",
        "network renderer: vlan5"]
    assert [p.message for p in rendered.problems] == [
        "defined twice", "primary 'eth1' is not one of its interfaces",
        "member of both bond0 and br0", "a VLAN needs its id and link"]


def test_a_rename_onto_another_devices_name_is_refused():
    parsed = parse_v2({"version": 2, "ethernets": {
        "a": {"match": {"macaddress": "52:54:00:00:00:01"}, "set-name": "b"}, "b": {}}})
    assert parsed.problems == []
    rendered = render(parsed.config)
    assert rendered.files == {}
    assert places(rendered.problems) == ["network renderer: b"]


def test_v1_route_without_a_device_on_its_gateways_network():
    parsed = parse_v1({"version": 1, "config": [
        {"type": "physical", "name": "eth0", "subnets": [{"type": "dhcp"}]},
        {"type": "route", "destination": "10.0.0.0/8", "gateway": "192.0.2.1"}]})
    assert places(parsed.problems) == ["network-config: config[1]"]


def test_bad_bond_and_bridge_parameters_are_named():
    parsed = parse_v2({"version": 2, "ethernets": {"e0": {}}, "bonds": {"bond0": {
        "interfaces": ["e0"], "parameters": {"mode": "fastest", "arp-interval": 5}}},
        "bridges": {"br0": {"interfaces": [], "parameters": {"path-cost": {"e0": 5}}}}})
    assert places(parsed.problems) == [
        "network-config: bonds.bond0.parameters.mode",
        "network-config: bonds.bond0.parameters.arp-interval",
        "network-config: bridges.br0.parameters.path-cost"]


def test_netmasks_as_addresses():
    assert prefix_length("255.255.255.0") == 24
    assert prefix_length("ffff:ffff:ffff:ffff::") == 64
    assert prefix_length("255.0.255.0") == "255.0.255.0"  # not a mask: left for the parser
    assert prefix_length(16) == 16
