"""The model as systemd-networkd files: ``10-bootseed-<name>.network`` for every device,
``.netdev`` for bonds, VLANs and bridges, ``.link`` for a NIC renamed by MAC.

networkd uses the first ``.network`` file (in file name order across its
directories) whose ``[Match]`` fits a device, so ``10-`` puts ours before the
image's own defaults (``80-``, ``90-``, ``99-``). A NIC is found by its permanent MAC
(``PermanentMACAddress=``), which enslaving it to a bond does not change; one found only
by its MAC is also matched with ``Type=ether``, so no bond or VLAN ever takes its file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bootseed.contract.problems import Level, Problem
from bootseed.late.netconfig.model import Interface, Kind, NetworkConfig

PREFIX = "10-bootseed-"
NETWORK_DIR = "/etc/systemd/network"
WHERE = "network renderer"


@dataclass
class Rendered:
    """File name (in :data:`NETWORK_DIR`) -> content, or the problems that stop it."""

    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def render(config: NetworkConfig) -> Rendered:
    out = Rendered()

    def problem(name: str, message: str) -> None:
        out.problems.append(Problem(f"{WHERE}: {name}", message, Level.ERROR))

    names = [i.name for i in config.interfaces]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problem(name, "defined twice")
    stems = [file_stem(i) for i in config.interfaces]
    if not out.problems:
        for stem in sorted({s for s in stems if stems.count(s) > 1}):
            problem(stem, "two devices would get this name")
    master: dict[str, str] = {}
    vlans: dict[str, list[str]] = {}
    for iface in config.interfaces:
        for member in iface.members:
            if member in master:
                problem(member, f"member of both {master[member]} and {iface.name}")
            master[member] = iface.name
        if iface.primary_member is not None and iface.primary_member not in iface.members:
            problem(iface.name, f"primary {iface.primary_member!r} is not one of its interfaces")
        if iface.vlan_link is not None:
            vlans.setdefault(iface.vlan_link, []).append(iface.name)
    for iface in config.interfaces:
        if iface.kind is Kind.VLAN and (iface.vlan_id is None or iface.vlan_link is None):
            problem(iface.name, "a VLAN needs its id and link")
    if out.problems:
        return out
    by_name = {i.name: i for i in config.interfaces}
    for iface in config.interfaces:
        stem = PREFIX + file_stem(iface)
        if iface.set_name is not None and iface.match_mac is not None:
            out.files[stem + ".link"] = _link(iface)
        if iface.kind is not Kind.PHYSICAL:
            out.files[stem + ".netdev"] = _netdev(iface)
        parent = by_name.get(master.get(iface.name, ""))
        out.files[stem + ".network"] = _network(iface, config, parent, vlans.get(iface.name, []))
    return out


def file_stem(iface: Interface) -> str:
    """A renamed NIC's files carry its new name."""
    return iface.set_name or iface.name


def _section(title: str, lines: list[str]) -> str:
    return "\n".join([f"[{title}]", *lines]) + "\n"


def _link(iface: Interface) -> str:
    return _section("Match", [f"MACAddress={iface.match_mac}"]) + "\n" + _section(
        "Link", [f"Name={iface.set_name}"])


def _netdev(iface: Interface) -> str:
    lines = [f"Name={iface.name}", f"Kind={iface.kind}"]
    if iface.mac_address is not None:
        lines.append(f"MACAddress={iface.mac_address}")
    text = _section("NetDev", lines)
    if iface.kind is Kind.VLAN:
        text += "\n" + _section("VLAN", [f"Id={iface.vlan_id}"])
    elif iface.netdev_settings:
        title = "Bond" if iface.kind is Kind.BOND else "Bridge"
        text += "\n" + _section(title, [f"{k}={v}" for k, v in iface.netdev_settings])
    return text


def _match(iface: Interface) -> list[str]:
    if iface.kind is not Kind.PHYSICAL:
        return [f"Name={iface.name}"]
    lines: list[str] = []
    if iface.match_mac is not None:
        # The permanent address: a bond gives its members its own MAC, and networkd
        # matches a link again when its address changes; by the current address the
        # member would then lose its file (and its Bond=) to another one.
        lines.append(f"PermanentMACAddress={iface.match_mac}")
    if iface.set_name is not None:
        lines.append(f"Name={iface.set_name}")
    elif iface.match_name is not None:
        lines.append(f"Name={iface.match_name}")
    elif iface.match_mac is not None:
        lines.append("Type=ether")
    if iface.match_driver is not None:
        lines.append(f"Driver={iface.match_driver}")
    if not lines:
        lines.append(f"Name={iface.name}")
    return lines


def _configures_addresses(iface: Interface) -> bool:
    return bool(iface.addresses or iface.dhcp4 or iface.dhcp6 or iface.accept_ra)


def _network(iface: Interface, config: NetworkConfig, parent: Interface | None,
             vlans: list[str]) -> str:
    text = _section("Match", _match(iface))
    link = [f"MTUBytes={iface.mtu}"] if iface.mtu is not None else []
    if iface.optional:
        link.append("RequiredForOnline=no")
    if link:
        text += "\n" + _section("Link", link)
    network: list[str] = []
    dhcp = {(True, True): "yes", (True, False): "ipv4", (False, True): "ipv6"}.get(
        (iface.dhcp4, iface.dhcp6))
    if dhcp is not None:
        network.append(f"DHCP={dhcp}")
    if iface.accept_ra is not None:
        network.append(f"IPv6AcceptRA={'yes' if iface.accept_ra else 'no'}")
    network += [f"Address={a}" for a in iface.addresses]
    nameservers, search = list(iface.nameservers), list(iface.search)
    if _configures_addresses(iface):
        nameservers += [n for n in config.nameservers if n not in nameservers]
        search += [s for s in config.search if s not in search]
    network += [f"DNS={n}" for n in nameservers]
    if search:
        network.append("Domains=" + " ".join(search))
    if parent is not None:
        network.append(f"{'Bond' if parent.kind is Kind.BOND else 'Bridge'}={parent.name}")
        if parent.primary_member == iface.name:
            network.append("PrimarySlave=yes")
    network += [f"VLAN={v}" for v in vlans]
    if not _configures_addresses(iface) and parent is None:
        # A device that only carries others (a VLAN's parent, an unaddressed bridge)
        # still comes up, without addresses of its own.
        network.append("LinkLocalAddressing=no")
    if network:
        text += "\n" + _section("Network", network)
    if iface.dhcp_route_metric is not None:
        metric = [f"RouteMetric={iface.dhcp_route_metric}"]
        if iface.dhcp4:
            text += "\n" + _section("DHCPv4", metric)
        if iface.dhcp6:
            text += "\n" + _section("DHCPv6", metric)
    for route in iface.routes:
        lines = [f"Destination={route.to}"]
        if route.via is not None:
            lines.append(f"Gateway={route.via}")
        if route.metric is not None:
            lines.append(f"Metric={route.metric}")
        text += "\n" + _section("Route", lines)
    return text
