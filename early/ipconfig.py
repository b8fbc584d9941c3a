"""The ``ip=`` kernel parameter: what network configuration the user asked for.

Two dialects are in use and both are accepted:

- the kernel's / klibc's (``Documentation/admin-guide/nfs/nfsroot.rst``):
  ``ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>``
  and the short forms ``ip=off|none|on|any|dhcp|bootp|rarp|both``;
- dracut's: ``ip=<device>:<autoconf>[:<mtu>[:<macaddr>]]`` and the long form with
  ``<mtu>`` / ``<macaddr>`` (or DNS servers) after the autoconf field, IPv6 addresses in
  brackets.

The early stage only does IPv4 DHCP or static configuration; anything else is a
clear error naming the parameter and the field, and the caller decides what to do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from bootseed.contract.cmdline import OFF_WORDS, ON_WORDS

# The kernel's and dracut's autoconf words; an on word (ip=on, ip=yes) asks for any
# method, which is DHCP here. Off words are the one set in contract/cmdline.py.
DHCP_WORDS = frozenset({"any", "dhcp", "bootp", "both", "rarp", "single-dhcp"}) | ON_WORDS
UNSUPPORTED_WORDS = frozenset({"dhcp6", "auto6", "either6", "link6", "link-local", "ibft"})
FIELD_NAMES = (
    "client address", "server address", "gateway", "netmask", "hostname", "device",
    "autoconf", "dns0 or mtu", "dns1 or macaddr", "ntp0",
)


class IpConfigError(ValueError):
    """An ``ip=`` value the early stage cannot use; the message names the field."""


@dataclass(frozen=True)
class IpConfig:
    """One ``ip=`` request. ``method`` is ``off``, ``dhcp`` or ``static``."""

    method: str
    device: str | None = None
    address: str | None = None
    prefixlen: int | None = None
    gateway: str | None = None
    hostname: str | None = None
    dns: tuple[str, ...] = ()
    mtu: int | None = None
    raw: str = ""

    @property
    def cidr(self) -> str | None:
        if self.address is None or self.prefixlen is None:
            return None
        return f"{self.address}/{self.prefixlen}"


def parse_ip(value: str) -> IpConfig:
    """Parse the value of one ``ip=`` parameter (without the ``ip=``)."""
    raw = value
    word = value.strip().lower()
    if not word:
        raise IpConfigError("ip=: empty value")
    if word in OFF_WORDS:
        return IpConfig(method="off", raw=raw)
    if word in DHCP_WORDS:
        return IpConfig(method="dhcp", raw=raw)
    if word in UNSUPPORTED_WORDS:
        raise IpConfigError(f"ip={raw}: {word} is not supported by the early stage (IPv4 only)")
    fields = _split_fields(value)
    if len(fields) <= 4 and _is_device_form(fields):
        return _parse_device_form(raw, fields)
    return _parse_long_form(raw, fields)


def _split_fields(value: str) -> list[str]:
    """Split on ``:`` except inside ``[...]`` (dracut's bracketed IPv6 addresses)."""
    fields: list[str] = []
    current: list[str] = []
    depth = 0
    for char in value:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if char == ":" and depth == 0:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _is_device_form(fields: list[str]) -> bool:
    # dracut's ip=<device>:<autoconf>[:<mtu>[:<macaddr>]]: the second field is an autoconf
    # word. (A MAC address would add colons, but then the field count exceeds 4 anyway
    # and the long form's autoconf position decides.)
    if len(fields) < 2:
        return False
    second = fields[1].lower()
    return second in DHCP_WORDS | OFF_WORDS | UNSUPPORTED_WORDS and not _looks_like_ip(fields[0])


def _parse_device_form(raw: str, fields: list[str]) -> IpConfig:
    device, autoconf = fields[0], fields[1].lower()
    if autoconf in UNSUPPORTED_WORDS:
        raise IpConfigError(f"ip={raw}: {autoconf} is not supported by the early stage (IPv4 only)")
    mtu = _parse_mtu(raw, fields[2]) if len(fields) > 2 and fields[2] else None
    method = "off" if autoconf in OFF_WORDS else "dhcp"
    return IpConfig(method=method, device=device or None, mtu=mtu, raw=raw)


def _parse_long_form(raw: str, fields: list[str]) -> IpConfig:
    if len(fields) > 10:
        # A trailing MAC address (dracut) contributes five more colons; fold it back.
        fields = [*fields[:8], ":".join(fields[8:])]
    padded = fields + [""] * (10 - len(fields))
    client, _server, gateway, netmask, hostname, device, autoconf = padded[:7]
    autoconf = autoconf.lower() or ("off" if client else "dhcp")
    if autoconf in UNSUPPORTED_WORDS:
        raise IpConfigError(f"ip={raw}: {autoconf} is not supported by the early stage (IPv4 only)")
    if autoconf not in DHCP_WORDS | OFF_WORDS:
        raise IpConfigError(f"ip={raw}: field 7 (autoconf) {autoconf!r} is not one of "
                            f"{', '.join(sorted(DHCP_WORDS | OFF_WORDS))}")
    dns, mtu = _parse_tail(raw, padded[7], padded[8])
    hostname_value = hostname or None
    if autoconf in DHCP_WORDS:
        return IpConfig(method="dhcp", device=device or None, hostname=hostname_value,
                        dns=dns, mtu=mtu, raw=raw)
    if not client:
        # ip=:::::eth0:off — explicitly no configuration.
        return IpConfig(method="off", device=device or None, raw=raw)
    address = _parse_v4(raw, 1, client)
    prefixlen = _parse_netmask(raw, netmask, address)
    gw = _parse_v4(raw, 3, gateway) if gateway else None
    if gw is not None:
        net = ipaddress.ip_network(f"{address}/{prefixlen}", strict=False)
        if ipaddress.ip_address(gw) not in net:
            raise IpConfigError(f"ip={raw}: field 3 (gateway) {gw} is outside {net}")
    return IpConfig(method="static", device=device or None, address=address, prefixlen=prefixlen,
                    gateway=gw, hostname=hostname_value, dns=dns, mtu=mtu, raw=raw)


def _parse_tail(raw: str, eighth: str, ninth: str) -> tuple[tuple[str, ...], int | None]:
    """Fields 8 and 9 are DNS servers (kernel) or MTU and MAC address (dracut)."""
    if eighth.isdigit():
        return (), _parse_mtu(raw, eighth)
    dns = tuple(_parse_v4(raw, index, text)
                for index, text in ((8, eighth), (9, ninth)) if text and _looks_like_ip(text))
    return dns, None


def _parse_mtu(raw: str, text: str) -> int:
    try:
        mtu = int(text)
    except ValueError:
        mtu = 0
    if not 68 <= mtu <= 65535:
        raise IpConfigError(f"ip={raw}: mtu {text!r} is not a number between 68 and 65535")
    return mtu


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _parse_v4(raw: str, index: int, text: str) -> str:
    name = FIELD_NAMES[index - 1]
    try:
        addr = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise IpConfigError(f"ip={raw}: field {index} ({name}) {text!r} is not an IP "
                            "address") from None
    if addr.version != 4:
        raise IpConfigError(f"ip={raw}: field {index} ({name}) {text}: only IPv4 is supported "
                            "by the early stage")
    return str(addr)


def _parse_netmask(raw: str, text: str, address: str) -> int:
    if not text:
        # The kernel derives a classful mask when none is given; nobody wants that on a
        # cloud, and guessing wrong breaks routing silently, so insist on one.
        raise IpConfigError(f"ip={raw}: field 4 (netmask) is required for a static address "
                            f"{address}")
    if text.isdigit():
        prefix = int(text)
        if 0 < prefix <= 32:
            return prefix
        raise IpConfigError(f"ip={raw}: field 4 (netmask) /{text} is not between 1 and 32")
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen
    except ValueError:
        raise IpConfigError(f"ip={raw}: field 4 (netmask) {text!r} is not a netmask") from None


def select_ip(values: Sequence[str]) -> tuple[IpConfig | None, list[str]]:
    """The ``ip=`` request that applies (the last one, as the kernel does) and the errors of
    the values that could not be parsed."""
    chosen: IpConfig | None = None
    errors: list[str] = []
    for value in values:
        try:
            chosen = parse_ip(value)
        except IpConfigError as exc:
            errors.append(str(exc))
    return chosen, errors
