"""The IPv4 configuration bring-up applies: what DHCP gave us, or what ``ip=`` set.

Its own module so that ``bootseed.early.net`` (which applies it) and
``bootseed.early.dhcp4`` (which obtains it) both import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StaticRoute:
    """One classless static route (DHCP option 121): ``destination`` is a CIDR."""

    destination: str
    gateway: str


@dataclass
class Lease:
    """The IPv4 configuration DHCP gave us (or that ``ip=`` set)."""

    address: str
    prefixlen: int
    gateway: str | None = None
    dns: list[str] = field(default_factory=list)
    server: str | None = None
    lease_time: int | None = None
    # True when the backend's DHCP client already put the address on the link.
    applied: bool = False
    domain: str | None = None
    mtu: int | None = None
    # Parsed and exposed; bring-up installs only the default route.
    routes: list[StaticRoute] = field(default_factory=list)

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefixlen}"
