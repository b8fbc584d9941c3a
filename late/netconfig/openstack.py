"""OpenStack ``network_data.json`` (config drive): ``links``, ``networks``, ``services``."""

from __future__ import annotations

import re

from bootseed.late.netconfig.common import BOND_MODES, check_references
from bootseed.late.netconfig.model import Checker, Interface, Kind, NetworkConfig, Parsed, Route

# Link types that are one NIC as the guest sees it.
PHYSICAL_TYPES = ("phy", "ethernet", "vif", "ovs", "bridge", "tap", "dvs", "hw_veb",
                  "hyperv", "vhostuser", "vrouter", "macvtap", "unbound")
LINK_KEYS = ("id", "type", "ethernet_mac_address", "mtu", "name", "vif_id", "bond_links",
             "bond_mode", "bond_miimon", "bond_xmit_hash_policy", "vlan_link", "vlan_id",
             "vlan_mac_address", "neutron_port_id")
NETWORK_KEYS = ("id", "link", "type", "ip_address", "netmask", "routes", "services",
                "network_id", "neutron_network_id")
# network type -> (dhcp4, dhcp6, accept_ra)
AUTO_TYPES: dict[str, tuple[bool, bool, bool | None]] = {
    "ipv4_dhcp": (True, False, None),
    "ipv6_dhcp": (False, True, True),
    "ipv6_dhcpv6-stateful": (False, True, True),
    "ipv6_dhcpv6-stateless": (False, False, True),
    "ipv6_slaac": (False, False, True),
}
_SAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def parse_openstack(doc: dict[str, object], source: str = "network_data.json") -> Parsed:
    check = Checker(source)
    config = NetworkConfig()
    by_id: dict[str, Interface] = {}
    for index, raw in enumerate(check.items("links", doc.get("links"))):
        where = f"links[{index}]"
        link = check.mapping(where, raw)
        if link is None:
            continue
        iface = _link(check, where, link)
        if iface is not None:
            by_id[str(link.get("id"))] = iface
            config.interfaces.append(iface)
    for iface in config.interfaces:  # bond members and vlan links name link ids
        iface.members = [by_id[m].name if m in by_id else m for m in iface.members]
        if iface.vlan_link in by_id:
            iface.vlan_link = by_id[iface.vlan_link].name
    for index, raw in enumerate(check.items("networks", doc.get("networks"))):
        where = f"networks[{index}]"
        network = check.mapping(where, raw)
        if network is not None:
            _network(check, where, network, by_id)
    for index, raw in enumerate(check.items("services", doc.get("services"))):
        config.nameservers += _dns(check, f"services[{index}]", raw)
    check_references(check, config)
    return Parsed(config, check.problems)


def _link(check: Checker, where: str, link: dict[str, object]) -> Interface | None:
    for key in link:
        if key not in LINK_KEYS:
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    kind_name = link.get("type")
    link_id = link.get("id")
    if not isinstance(link_id, str) or not link_id:
        check.problem(f"{where}.id", "missing")
        return None
    mtu = (check.integer(f"{where}.mtu", link["mtu"], 68, 65535)
           if link.get("mtu") is not None else None)
    if kind_name in PHYSICAL_TYPES:
        # A NIC is found by its MAC; the id only names our files.
        mac = check.mac(f"{where}.ethernet_mac_address", link.get("ethernet_mac_address"))
        return Interface(name=_SAFE.sub("_", link_id)[:15], match_mac=mac, mtu=mtu)
    if kind_name == "bond":
        name = check.ifname(f"{where}.id", link_id)
        if name is None:
            return None
        iface = Interface(name=name, kind=Kind.BOND, mtu=mtu)
        iface.members = [str(m) for m in check.items(f"{where}.bond_links",
                                                     link.get("bond_links"))]
        mode = link.get("bond_mode")
        if mode not in BOND_MODES:
            check.problem(f"{where}.bond_mode", "unknown bond mode")
        else:
            iface.netdev_settings.append(("Mode", str(mode)))
        if "bond_miimon" in link:
            miimon = check.integer(f"{where}.bond_miimon", link["bond_miimon"], 0, 86_400_000)
            if miimon is not None:
                iface.netdev_settings.append(("MIIMonitorSec", f"{miimon}ms"))
        if "bond_xmit_hash_policy" in link:
            policy = check.word(f"{where}.bond_xmit_hash_policy", link["bond_xmit_hash_policy"])
            if policy is not None:
                iface.netdev_settings.append(("TransmitHashPolicy", policy))
        if "ethernet_mac_address" in link:
            iface.mac_address = check.mac(f"{where}.ethernet_mac_address",
                                          link["ethernet_mac_address"])
        return iface
    if kind_name == "vlan":
        vlan_id = check.integer(f"{where}.vlan_id", link.get("vlan_id"), 0, 4094)
        name = check.ifname(f"{where}.id", link_id)
        if name is None or vlan_id is None:
            return None
        iface = Interface(name=name, kind=Kind.VLAN, mtu=mtu, vlan_id=vlan_id,
                          vlan_link=str(link.get("vlan_link")))
        if "vlan_mac_address" in link:
            iface.mac_address = check.mac(f"{where}.vlan_mac_address", link["vlan_mac_address"])
        return iface
    check.problem(f"{where}.type", f"link type {kind_name!r} not supported; nothing is written")
    return None


def _network(check: Checker, where: str, network: dict[str, object],
             by_id: dict[str, Interface]) -> None:
    for key in network:
        if key not in NETWORK_KEYS:
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    iface = by_id.get(str(network.get("link")))
    if iface is None:
        check.problem(f"{where}.link", f"no link with id {network.get('link')!r}")
        return
    kind = network.get("type")
    if kind in ("ipv4", "ipv6"):
        address = check.interface_address(f"{where}.ip_address", network.get("ip_address"),
                                          network.get("netmask"))
        if address is not None:
            iface.addresses.append(address)
    elif isinstance(kind, str) and kind in AUTO_TYPES:
        dhcp4, dhcp6, accept_ra = AUTO_TYPES[kind]
        iface.dhcp4 = iface.dhcp4 or dhcp4
        iface.dhcp6 = iface.dhcp6 or dhcp6
        if accept_ra is not None:
            iface.accept_ra = accept_ra
    else:
        check.problem(f"{where}.type", f"network type {kind!r} not supported; "
                                       "nothing is written")
    for index, raw in enumerate(check.items(f"{where}.routes", network.get("routes"))):
        route_where = f"{where}.routes[{index}]"
        route = check.mapping(route_where, raw)
        if route is None:
            continue
        to = check.network(f"{route_where}.network", route.get("network"), route.get("netmask"))
        via = check.ip(f"{route_where}.gateway", route.get("gateway"))
        if to is not None and via is not None:
            iface.routes.append(Route(to, via))
    for index, raw in enumerate(check.items(f"{where}.services", network.get("services"))):
        iface.nameservers += _dns(check, f"{where}.services[{index}]", raw)


def _dns(check: Checker, where: str, raw: object) -> list[str]:
    service = check.mapping(where, raw)
    if service is None:
        return []
    if service.get("type") != "dns":
        check.problem(f"{where}.type", f"service {service.get('type')!r} not supported; "
                                       "nothing is written")
        return []
    address = check.ip(f"{where}.address", service.get("address"))
    return [] if address is None else [address]
