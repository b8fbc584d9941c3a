"""Bounded wait for "the network is up": a default route plus a non-loopback address.

Reads ``/proc/net`` only (no netlink library to import at boot). IPv4: a
default route in ``route`` whose interface has an address (``SIOCGIFADDR``).
IPv6: a ``::/0`` route in ``ipv6_route`` off ``lo`` and a global address in
``if_inet6``.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_SIOCGIFADDR = 0x8915
_RTF_UP = 0x1


@dataclass(frozen=True)
class NetState:
    up: bool
    detail: str


@dataclass(frozen=True)
class NetWait:
    up: bool
    waited: float
    detail: str


def ipv4_address(ifname: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                 struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def _ipv4_default_ifaces(proc: Path) -> list[str]:
    try:
        lines = (proc / "net" / "route").read_text().splitlines()[1:]
    except OSError:
        return []
    found = []
    for line in lines:
        cols = line.split()
        if len(cols) < 8:
            continue
        iface, dest, flags, mask = cols[0], cols[1], int(cols[3], 16), cols[7]
        if dest == "00000000" and mask == "00000000" and flags & _RTF_UP and iface != "lo":
            found.append(iface)
    return found


def _ipv6_up(proc: Path) -> str | None:
    try:
        routes = (proc / "net" / "ipv6_route").read_text().splitlines()
        addrs = (proc / "net" / "if_inet6").read_text().splitlines()
    except OSError:
        return None
    default_ifaces = {
        cols[9] for cols in (r.split() for r in routes)
        if len(cols) >= 10 and cols[0] == "0" * 32 and cols[1] == "00" and cols[9] != "lo"
        and int(cols[8], 16) & _RTF_UP
    }
    for line in addrs:
        cols = line.split()
        # scope 00 is global; link-local (20) and host (10) do not count.
        if len(cols) >= 6 and cols[5] in default_ifaces and cols[3] == "00":
            return cols[5]
    return None


def network_state(
    proc: Path = Path("/proc"),
    address_of: Callable[[str], str | None] = ipv4_address,
) -> NetState:
    for iface in _ipv4_default_ifaces(proc):
        addr = address_of(iface)
        if addr and not addr.startswith("127."):
            return NetState(True, f"IPv4 default route via {iface} ({addr})")
    iface6 = _ipv6_up(proc)
    if iface6:
        return NetState(True, f"IPv6 default route via {iface6}")
    return NetState(False, "no default route with a non-loopback address")


def wait_for_network(
    timeout: float,
    proc: Path = Path("/proc"),
    interval: float = 0.2,
    address_of: Callable[[str], str | None] = ipv4_address,
) -> NetWait:
    """Poll until up or ``timeout`` seconds passed; never longer."""
    start = time.monotonic()
    while True:
        state = network_state(proc, address_of)
        waited = time.monotonic() - start
        if state.up or waited >= timeout:
            return NetWait(state.up, waited, state.detail)
        time.sleep(min(interval, max(0.0, timeout - waited)))
