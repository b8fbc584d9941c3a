"""cloud-init network config version 1: a ``config`` list of physical, bond, vlan, bridge,
nameserver and route entries; addressing in each device's ``subnets``."""

from __future__ import annotations

from bootseed.late.netconfig.common import bond_settings, bridge_settings, check_references
from bootseed.late.netconfig.model import (
    Checker,
    Interface,
    Kind,
    NetworkConfig,
    Parsed,
    Route,
    default_route,
)

DEVICE_TYPES = {"physical": Kind.PHYSICAL, "bond": Kind.BOND, "vlan": Kind.VLAN,
                "bridge": Kind.BRIDGE}
DEVICE_KEYS = {
    Kind.PHYSICAL: ("mac_address",),
    Kind.BOND: ("mac_address", "bond_interfaces", "params"),
    Kind.VLAN: ("mac_address", "vlan_link", "vlan_id"),
    Kind.BRIDGE: ("mac_address", "bridge_interfaces", "params"),
}
# ``id`` (written by some generators) and a subnet's ``control`` (ifupdown's auto or
# hotplug) have no effect with networkd: every configured device comes up.
COMMON_KEYS = ("type", "name", "id", "mtu", "subnets", "accept-ra")
SUBNET_KEYS = ("type", "address", "netmask", "prefix", "gateway", "dns_nameservers",
               "dns_search", "routes", "metric", "control")
# v1 (ifupdown-style) parameter names -> the v2 names common.py maps to networkd
BOND_PARAMS = {
    "bond-mode": "mode", "bond-miimon": "mii-monitor-interval", "bond-lacp-rate": "lacp-rate",
    "bond-xmit-hash-policy": "transmit-hash-policy", "bond-min-links": "min-links",
    "bond-ad-select": "ad-select", "bond-updelay": "up-delay", "bond-downdelay": "down-delay",
    "bond-primary": "primary",
}
BRIDGE_PARAMS = {
    "bridge_stp": "stp", "bridge_fd": "forward-delay", "bridge_hello": "hello-time",
    "bridge_maxage": "max-age", "bridge_bridgeprio": "priority", "bridge_ageing": "ageing-time",
}
STATIC = ("static", "static6")
DHCP4 = ("dhcp", "dhcp4")
# subnet type -> (dhcp6, accept_ra)
IPV6_AUTO = {
    "dhcp6": (True, True),
    "ipv6_dhcpv6-stateful": (True, True),
    # Stateless DHCPv6 and SLAAC both follow the router advertisement: networkd
    # asks DHCPv6 for the other settings when the RA's "other" flag says so.
    "ipv6_dhcpv6-stateless": (False, True),
    "ipv6_slaac": (False, True),
}


def parse_v1(doc: dict[str, object], source: str = "network-config") -> Parsed:
    check = Checker(source)
    config = NetworkConfig()
    for key in doc:
        if key not in ("version", "config"):
            check.problem(key, "not supported; nothing is written")
    entries = check.items("config", doc.get("config"))
    global_routes: list[tuple[str, Route]] = []
    for index, raw in enumerate(entries):
        where = f"config[{index}]"
        entry = check.mapping(where, raw)
        if entry is None:
            continue
        kind_name = entry.get("type")
        if kind_name == "nameserver":
            _nameserver(check, where, entry, config)
        elif kind_name == "route":
            route = _route(check, where, entry, destination_key="destination")
            if route is not None:
                global_routes.append((where, route))
        elif isinstance(kind_name, str) and kind_name in DEVICE_TYPES:
            iface = _device(check, where, DEVICE_TYPES[kind_name], entry)
            if iface is not None:
                config.interfaces.append(iface)
        else:
            check.problem(f"{where}.type", f"type {kind_name!r} not supported; "
                                           "nothing is written")
    for where, route in global_routes:
        _place_route(check, where, route, config)
    check_references(check, config)
    return Parsed(config, check.problems)


def _device(check: Checker, where: str, kind: Kind, entry: dict[str, object]) -> Interface | None:
    for key in entry:
        if key not in COMMON_KEYS + DEVICE_KEYS[kind]:
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    name = check.ifname(f"{where}.name", entry.get("name"))
    if name is None:
        return None
    where = f"{where} ({name})"
    iface = Interface(name=name, kind=kind)
    if "mac_address" in entry:
        mac = check.mac(f"{where}.mac_address", entry["mac_address"])
        if kind is Kind.PHYSICAL:
            # v1 names a NIC found by its MAC: the device is renamed to ``name``.
            iface.match_mac, iface.set_name = mac, name
        else:
            iface.mac_address = mac
    if "mtu" in entry and entry["mtu"] is not None:
        iface.mtu = check.integer(f"{where}.mtu", entry["mtu"], 68, 65535)
    if "accept-ra" in entry:
        iface.accept_ra = check.flag(f"{where}.accept-ra", entry["accept-ra"])
    if kind is Kind.VLAN:
        iface.vlan_id = check.integer(f"{where}.vlan_id", entry.get("vlan_id"), 0, 4094)
        iface.vlan_link = check.ifname(f"{where}.vlan_link", entry.get("vlan_link"))
    elif kind in (Kind.BOND, Kind.BRIDGE):
        members_key = "bond_interfaces" if kind is Kind.BOND else "bridge_interfaces"
        iface.members = check.ifnames(f"{where}.{members_key}", entry.get(members_key))
        params = check.mapping(f"{where}.params", entry.get("params") or {}) or {}
        names = BOND_PARAMS if kind is Kind.BOND else BRIDGE_PARAMS
        renamed: dict[str, object] = {}
        for key, value in params.items():
            if key not in names:
                check.problem(f"{where}.params.{key}", "not supported; nothing is written")
            else:
                renamed[names[key]] = value
        if kind is Kind.BOND:
            iface.netdev_settings, iface.primary_member = bond_settings(
                check, f"{where}.params", renamed)
        else:
            iface.netdev_settings = bridge_settings(check, f"{where}.params", renamed)
    for index, raw in enumerate(check.items(f"{where}.subnets", entry.get("subnets"))):
        _subnet(check, f"{where}.subnets[{index}]", raw, iface)
    return iface


def _subnet(check: Checker, where: str, raw: object, iface: Interface) -> None:
    subnet = check.mapping(where, raw)
    if subnet is None:
        return
    for key in subnet:
        if key not in SUBNET_KEYS:
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    kind = subnet.get("type")
    if kind in STATIC:
        netmask = subnet.get("netmask", subnet.get("prefix"))
        address = check.interface_address(f"{where}.address", subnet.get("address"), netmask)
        if address is not None:
            iface.addresses.append(address)
        if subnet.get("gateway") is not None:
            gateway = check.ip(f"{where}.gateway", subnet["gateway"])
            if gateway is not None:
                iface.routes.append(default_route(gateway))
    elif kind in DHCP4:
        iface.dhcp4 = True
    elif isinstance(kind, str) and kind in IPV6_AUTO:
        dhcp6, accept_ra = IPV6_AUTO[kind]
        iface.dhcp6 = iface.dhcp6 or dhcp6
        if iface.accept_ra is None:
            iface.accept_ra = accept_ra
    elif kind == "manual":
        pass
    else:
        check.problem(f"{where}.type", f"subnet type {kind!r} not supported; "
                                       "nothing is written")
    iface.nameservers += check.nameservers(f"{where}.dns_nameservers",
                                           subnet.get("dns_nameservers"))
    iface.search += check.domains(f"{where}.dns_search", subnet.get("dns_search"))
    for index, raw_route in enumerate(check.items(f"{where}.routes", subnet.get("routes"))):
        body = check.mapping(f"{where}.routes[{index}]", raw_route)
        if body is not None:
            route = _route(check, f"{where}.routes[{index}]", body, destination_key="network")
            if route is not None:
                iface.routes.append(route)


def _route(check: Checker, where: str, body: dict[str, object],
           destination_key: str) -> Route | None:
    for key in body:
        if key not in ("type", destination_key, "netmask", "gateway", "metric"):
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    gateway = check.ip(f"{where}.gateway", body["gateway"]) if "gateway" in body else None
    to = check.network(f"{where}.{destination_key}", body.get(destination_key),
                       body.get("netmask"))
    metric = (check.integer(f"{where}.metric", body["metric"], 0, 2**32 - 1)
              if "metric" in body else None)
    return None if to is None else Route(to, gateway, metric)


def _nameserver(check: Checker, where: str, entry: dict[str, object],
                config: NetworkConfig) -> None:
    for key in entry:
        if key not in ("type", "address", "search", "interface"):
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    servers = check.nameservers(f"{where}.address", entry.get("address"))
    domains = check.domains(f"{where}.search", entry.get("search"))
    target = entry.get("interface")
    if target is not None:
        iface = config.find(str(target))
        if iface is None:
            check.problem(f"{where}.interface", f"{target!r} is not defined before it")
            return
        iface.nameservers += servers
        iface.search += domains
        return
    config.nameservers += servers
    config.search += domains


def _place_route(check: Checker, where: str, route: Route, config: NetworkConfig) -> None:
    """A top-level route belongs to the device whose static subnet holds its gateway."""
    import ipaddress

    if route.via is not None:
        gateway = ipaddress.ip_address(route.via)
        for iface in config.interfaces:
            if any(gateway in ipaddress.ip_interface(a).network for a in iface.addresses):
                iface.routes.append(route)
                return
    check.problem(where, "no device has a static address on the gateway's network; "
                         "cannot tell where the route goes")

