"""cloud-init network config version 2 (netplan's YAML): ethernets, bonds, vlans, bridges."""

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

SECTIONS = {"ethernets": Kind.PHYSICAL, "bonds": Kind.BOND, "vlans": Kind.VLAN,
            "bridges": Kind.BRIDGE}
# Understood at the top and deliberately without effect: we always render networkd.
IGNORED_TOP = ("version", "renderer")
COMMON_KEYS = ("dhcp4", "dhcp6", "accept-ra", "addresses", "gateway4", "gateway6",
               "nameservers", "mtu", "routes", "macaddress", "optional", "renderer")
KIND_KEYS = {
    Kind.PHYSICAL: ("match", "set-name"),
    Kind.BOND: ("interfaces", "parameters"),
    Kind.BRIDGE: ("interfaces", "parameters"),
    Kind.VLAN: ("id", "link"),
}


def parse_v2(doc: dict[str, object], source: str = "network-config") -> Parsed:
    check = Checker(source)
    config = NetworkConfig()
    for key, section in doc.items():
        if key in IGNORED_TOP:
            continue
        kind = SECTIONS.get(key)
        if kind is None:
            check.problem(key, "not supported; nothing is written")
            continue
        devices = check.mapping(key, section)
        for name, settings in (devices or {}).items():
            where = f"{key}.{name}"
            body = check.mapping(where, settings if settings is not None else {})
            if body is None:
                continue
            iface = _device(check, where, str(name), kind, body)
            if iface is not None:
                config.interfaces.append(iface)
    check_references(check, config)
    return Parsed(config, check.problems)


def _device(check: Checker, where: str, name: str, kind: Kind,
            body: dict[str, object]) -> Interface | None:
    ifname = check.ifname(where, name)
    if ifname is None:
        return None
    iface = Interface(name=ifname, kind=kind)
    allowed = COMMON_KEYS + KIND_KEYS[kind]
    for key in body:
        if key not in allowed:
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    if kind is Kind.PHYSICAL:
        _match(check, where, iface, body)
    elif kind is Kind.VLAN:
        iface.vlan_id = check.integer(f"{where}.id", body.get("id"), 0, 4094)
        iface.vlan_link = check.ifname(f"{where}.link", body.get("link"))
    else:
        iface.members = check.ifnames(f"{where}.interfaces", body.get("interfaces"))
        params = check.mapping(f"{where}.parameters", body.get("parameters") or {}) or {}
        if kind is Kind.BOND:
            iface.netdev_settings, iface.primary_member = bond_settings(
                check, f"{where}.parameters", params)
        else:
            iface.netdev_settings = bridge_settings(check, f"{where}.parameters", params)
    _addressing(check, where, iface, body)
    return iface


def _match(check: Checker, where: str, iface: Interface, body: dict[str, object]) -> None:
    match = check.mapping(f"{where}.match", body.get("match") or {}) or {}
    for key, value in match.items():
        place = f"{where}.match.{key}"
        if key == "macaddress":
            iface.match_mac = check.mac(place, value)
        elif key == "name":
            iface.match_name = check.glob(place, value)
        elif key == "driver":
            iface.match_driver = check.glob(place, value)
        else:
            check.problem(place, "not supported; nothing is written")
    if "set-name" in body:
        iface.set_name = check.ifname(f"{where}.set-name", body["set-name"])
        if iface.set_name is not None and iface.match_mac is None:
            check.problem(f"{where}.set-name", "needs match.macaddress (a rename is only "
                                               "written for a device found by MAC)")


def _addressing(check: Checker, where: str, iface: Interface, body: dict[str, object]) -> None:
    for key, attr in (("dhcp4", "dhcp4"), ("dhcp6", "dhcp6"), ("accept-ra", "accept_ra"),
                      ("optional", "optional")):
        if key in body:
            flag = check.flag(f"{where}.{key}", body[key])
            if flag is not None:
                setattr(iface, attr, flag)
    if "mtu" in body:
        iface.mtu = check.integer(f"{where}.mtu", body["mtu"], 68, 65535)
    if "macaddress" in body:
        iface.mac_address = check.mac(f"{where}.macaddress", body["macaddress"])
    for index, value in enumerate(check.items(f"{where}.addresses", body.get("addresses"))):
        address = check.interface_address(f"{where}.addresses[{index}]", value)
        if address is not None:
            iface.addresses.append(address)
    for key in ("gateway4", "gateway6"):
        if key in body:
            gateway = check.ip(f"{where}.{key}", body[key])
            if gateway is not None:
                iface.routes.append(default_route(gateway))
    dns = check.mapping(f"{where}.nameservers", body.get("nameservers") or {}) or {}
    for key in dns:
        if key not in ("addresses", "search"):
            check.problem(f"{where}.nameservers.{key}", "not supported; nothing is written")
    iface.nameservers = check.nameservers(f"{where}.nameservers.addresses",
                                          dns.get("addresses"))
    iface.search = check.domains(f"{where}.nameservers.search", dns.get("search"))
    for index, raw in enumerate(check.items(f"{where}.routes", body.get("routes"))):
        route = _route(check, f"{where}.routes[{index}]", raw)
        if route is not None:
            iface.routes.append(route)


def _route(check: Checker, where: str, raw: object) -> Route | None:
    body = check.mapping(where, raw)
    if body is None:
        return None
    for key in body:
        if key not in ("to", "via", "metric"):
            check.problem(f"{where}.{key}", "not supported; nothing is written")
    via = check.ip(f"{where}.via", body["via"]) if "via" in body else None
    to_value = body.get("to")
    if to_value == "default":
        to_value = "::/0" if via is not None and ":" in via else "0.0.0.0/0"
    to = check.network(f"{where}.to", to_value)
    metric = (check.integer(f"{where}.metric", body["metric"], 0, 2**32 - 1)
              if "metric" in body else None)
    return None if to is None else Route(to, via, metric)

