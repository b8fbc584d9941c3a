"""IPv6 by router advertisement: a bounded wait for what the kernel configures itself.

With ``accept_ra`` on (the default while forwarding is off), the kernel answers a
router advertisement on its own: SLAAC gives the link a global address and the
advertising router becomes the default route. So there is nothing to send or
configure here; this only waits, bounded, until both are there and the address has
passed duplicate address detection, reading ``/proc/net/if_inet6`` and
``/proc/net/ipv6_route`` (standard library, the same for every backend). When the link
goes down the kernel drops both again, which is all tear-down needs.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.05
SCOPE_GLOBAL = 0x00
# IFA_F_* flags that make an address unusable as a source (yet, or for good).
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RTF_GATEWAY = 0x0002
RTF_UP = 0x0001


@dataclass(frozen=True)
class RouterConfig:
    """What a router advertisement gave the link: a global address and the router."""

    address: str  # CIDR
    router: str


def _hex_address(text: str) -> str:
    return str(ipaddress.IPv6Address(bytes.fromhex(text)))


def global_addresses(ifname: str, proc_net: str = "/proc/net") -> list[str]:
    """Usable global addresses of ``ifname`` as CIDRs (ULA such as fd00:ec2::/64 count)."""
    found: list[str] = []
    for line in _lines(Path(proc_net) / "if_inet6"):
        fields = line.split()
        if len(fields) != 6 or fields[5] != ifname:
            continue
        prefixlen, scope, flags = (int(x, 16) for x in fields[2:5])
        if scope != SCOPE_GLOBAL or flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
            continue
        found.append(f"{_hex_address(fields[0])}/{prefixlen}")
    return found


def default_router(ifname: str, proc_net: str = "/proc/net") -> str | None:
    """The gateway of an IPv6 default route through ``ifname``, if there is one."""
    for line in _lines(Path(proc_net) / "ipv6_route"):
        fields = line.split()
        if len(fields) != 10 or fields[9] != ifname:
            continue
        destination, prefixlen, gateway, flags = fields[0], fields[1], fields[4], fields[8]
        if int(prefixlen, 16) != 0 or int(destination, 16) != 0:
            continue
        if int(flags, 16) & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY:
            return _hex_address(gateway)
    return None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        return []


def ipv6_available(proc_net: str = "/proc/net") -> bool:
    return (Path(proc_net) / "if_inet6").exists()


def wait_for_router(ifname: str, timeout: float, proc_net: str = "/proc/net",
                    clock: Callable[[], float] = time.monotonic) -> RouterConfig:
    """Wait at most ``timeout`` s for a global address and a default route on ``ifname``.

    Raises TimeoutError (or OSError when the kernel has no IPv6) naming the interface."""
    if not ipv6_available(proc_net):
        raise OSError(f"no IPv6 in this kernel for {ifname} ({proc_net}/if_inet6 missing)")
    deadline = clock() + timeout
    while True:
        addresses = global_addresses(ifname, proc_net)
        router = default_router(ifname, proc_net)
        if addresses and router:
            return RouterConfig(address=addresses[0], router=router)
        if clock() >= deadline:
            missing = "global address" if not addresses else "default route"
            raise TimeoutError(f"no IPv6 router advertisement on {ifname} within "
                               f"{timeout:g} s (no {missing})")
        time.sleep(POLL_S)
