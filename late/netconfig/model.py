"""The one network model every parser produces and the renderer reads."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from bootseed.contract.problems import Level, Problem

# Linux interface names: at most 15 bytes, no '/', no whitespace; we also keep them
# to characters that are safe in a file name.
_IFNAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?)+")
_GLOB = re.compile(r"[A-Za-z0-9_.:*?\[\]!-]{1,64}")
_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


class Kind(StrEnum):
    PHYSICAL = "physical"
    BOND = "bond"
    VLAN = "vlan"
    BRIDGE = "bridge"


@dataclass(frozen=True)
class Route:
    """``to`` is a network in CIDR form (``0.0.0.0/0`` for the default route)."""

    to: str
    via: str | None = None
    metric: int | None = None


@dataclass
class Interface:
    """One device. ``name`` is the kernel name it has (or gets, with ``set_name``);
    a physical device may instead be found by ``match_mac``/``match_name``/``match_driver``."""

    name: str
    kind: Kind = Kind.PHYSICAL
    match_mac: str | None = None
    match_name: str | None = None
    match_driver: str | None = None
    set_name: str | None = None
    mtu: int | None = None
    dhcp4: bool = False
    dhcp6: bool = False
    accept_ra: bool | None = None
    dhcp_route_metric: int | None = None
    optional: bool = False
    addresses: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    # bond and bridge: the member interfaces' names
    members: list[str] = field(default_factory=list)
    # networkd [Bond] or [Bridge] settings, already in networkd's spelling
    netdev_settings: list[tuple[str, str]] = field(default_factory=list)
    primary_member: str | None = None
    vlan_id: int | None = None
    vlan_link: str | None = None
    # a NIC that got its MAC address from the config (bond, bridge, vlan)
    mac_address: str | None = None


@dataclass
class NetworkConfig:
    interfaces: list[Interface] = field(default_factory=list)
    # Not tied to one interface (v1 ``nameserver``, OpenStack global ``services``):
    # added to every interface that configures addresses.
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)

    def find(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)


@dataclass
class Parsed:
    config: NetworkConfig = field(default_factory=NetworkConfig)
    problems: list[Problem] = field(default_factory=list)


class Checker:
    """Value checks that turn a bad value into a Problem naming its place."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(f"{self.source}: {where}", message, Level.ERROR))

    def unsupported(self, where: str, keys: object) -> None:
        if isinstance(keys, dict):
            for key in keys:
                self.problem(f"{where}.{key}", "not supported; nothing is written")

    def mapping(self, where: str, value: object) -> dict[str, object] | None:
        if isinstance(value, dict):
            return value
        self.problem(where, f"must be a mapping, got {type(value).__name__}")
        return None

    def items(self, where: str, value: object) -> list[object]:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            words: list[object] = [*value.split()]
            return words
        self.problem(where, f"must be a list, got {type(value).__name__}")
        return []

    def ifnames(self, where: str, value: object) -> list[str]:
        found = [self.ifname(f"{where}[{i}]", v) for i, v in enumerate(self.items(where, value))]
        return [name for name in found if name is not None]

    def ifname(self, where: str, value: object) -> str | None:
        if isinstance(value, str) and _IFNAME.fullmatch(value):
            return value
        self.problem(where, "not a valid interface name (1-15 of A-Z a-z 0-9 _ . : -)")
        return None

    def mac(self, where: str, value: object) -> str | None:
        text = value.lower() if isinstance(value, str) else ""
        if _MAC.fullmatch(text):
            return text
        self.problem(where, "not a MAC address (six hex pairs separated by ':')")
        return None

    def glob(self, where: str, value: object) -> str | None:
        if isinstance(value, str) and _GLOB.fullmatch(value):
            return value
        self.problem(where, "not a valid name pattern")
        return None

    def word(self, where: str, value: object) -> str | None:
        plain = isinstance(value, (str, int)) and not isinstance(value, bool)
        if plain and _WORD.fullmatch(str(value)):
            return str(value)
        self.problem(where, "not a plain value (letters, digits, _ . + -)")
        return None

    def integer(self, where: str, value: object, low: int, high: int) -> int | None:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isdigit():
            number = int(value)
        if number is not None and low <= number <= high:
            return number
        self.problem(where, f"must be a whole number from {low} to {high}")
        return None

    def flag(self, where: str, value: object) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("on", "yes", "true", "1"):
            return True
        if isinstance(value, str) and value.lower() in ("off", "no", "false", "0"):
            return False
        self.problem(where, "must be true or false")
        return None

    def ip(self, where: str, value: object) -> str | None:
        try:
            return str(ipaddress.ip_address(str(value))) if isinstance(value, str) else None
        except ValueError:
            pass
        self.problem(where, "not an IP address")
        return None

    def interface_address(self, where: str, value: object,
                          netmask: object = None) -> str | None:
        """``addr/prefix``; ``netmask`` (a mask or a prefix length) when ``value`` has none."""
        if not isinstance(value, str):
            self.problem(where, "not an address")
            return None
        text = value
        if "/" not in text and netmask is not None:
            text = f"{value}/{prefix_length(netmask)}"
        if "/" not in text:
            self.problem(where, "an address needs a prefix length or a netmask")
            return None
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            self.problem(where, "not an address with a prefix length or netmask")
            return None
        return f"{iface.ip}/{iface.network.prefixlen}"

    def network(self, where: str, value: object, netmask: object = None) -> str | None:
        if not isinstance(value, str):
            self.problem(where, "not a network")
            return None
        text = value
        if "/" not in text:
            if netmask is None:
                netmask = 32 if ":" not in value else 128
            text = f"{value}/{prefix_length(netmask)}"
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            self.problem(where, "not a network address with a prefix length or netmask")
            return None

    def domain(self, where: str, value: object) -> str | None:
        if isinstance(value, str) and _DOMAIN.fullmatch(value):
            return value
        self.problem(where, "not a DNS domain name")
        return None

    def nameservers(self, where: str, value: object) -> list[str]:
        found = [self.ip(f"{where}[{i}]", v) for i, v in enumerate(self.items(where, value))]
        return [v for v in found if v is not None]

    def domains(self, where: str, value: object) -> list[str]:
        found = [self.domain(f"{where}[{i}]", v)
                 for i, v in enumerate(self.items(where, value))]
        return [v for v in found if v is not None]


def prefix_length(netmask: object) -> object:
    """A mask written as an address (``255.255.255.0``, ``ffff:ffff::``) as its prefix
    length; anything else unchanged, for the address parser to judge."""
    if not isinstance(netmask, str) or not any(c in netmask for c in ".:"):
        return netmask
    try:
        bits = int(ipaddress.ip_address(netmask))
    except ValueError:
        return netmask
    width = 32 if "." in netmask else 128
    ones = bin(bits).count("1")
    # contiguous ones from the top, or it is not a mask
    return ones if bits == ((1 << width) - 1) ^ ((1 << (width - ones)) - 1) else netmask


def default_route(gateway: str) -> Route:
    return Route("::/0" if ":" in gateway else "0.0.0.0/0", gateway)
