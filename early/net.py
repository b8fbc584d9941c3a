"""Network bring-up and tear-down for the initramfs, only when the seed needs it.

Plan: honour ``ip=`` when given (static or DHCP, optionally on a named device),
else DHCP on the first Ethernet link that reports carrier. Every wait is bounded.

Backends, chosen at run time:

- ``pyroute2`` (preferred): netlink for links, addresses and routes; DHCPv4 is
  :mod:`bootseed.early.dhcp4` (standard library), so Debian bookworm's pyroute2 0.7.2,
  which has no usable DHCP client, is enough. Imported lazily, and without running
  ``pyroute2/__init__.py``: that file imports the whole library (NDB, sqlite3,
  nftables, ... about 180 modules, twice the import time) while bring-up needs about a
  hundred; see ``_import_pyroute2``.
- ``klibc-ipconfig`` (fallback when pyroute2 is absent): the ``ipconfig`` binary that
  initramfs-tools ships in every initramfs. It does link, address, route and DHCP in
  one go and describes the result in ``/run/net-<device>.conf``.

When DHCPv4 gives no lease, an IPv6-only subnet still serves: a bounded wait for what
the kernel's SLAAC made of a router advertisement (:mod:`bootseed.early.ra`, the same for
both backends); bring-up then succeeds with method ``ra``.

Carrier is read from ``/sys/class/net/<dev>/carrier`` rather than from netlink events:
same kernel state, no socket, and trivially bounded by a poll loop.

What the real root finds: the early stage removes what it configured (address,
default route) and sets links it raised back down, so systemd-networkd / ifupdown on
the real root start from a clean link and do not fight over it; the lease is *not*
released (the OS's client asks again and normally gets the same address). What was
used is recorded in ``seed.json`` (``actions``) for the late stage and for humans.
With the klibc fallback the addresses are removed with ``ip`` when it exists; else
they stay, described in klibc's ``/run/net-<device>.conf`` which initramfs-tools'
consumers read, and ``seed.json`` says so.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bootseed.early.ipconfig import IpConfig
from bootseed.early.lease import Lease  # its own module (dhcp4 builds it); net.Lease stays

ARPHRD_ETHER = "1"
CARRIER_POLL_S = 0.02
DEFAULT_CARRIER_TIMEOUT = 5.0
DEFAULT_DHCP_TIMEOUT = 15.0
# After DHCPv4 failed: how much longer to wait for IPv6 by router advertisement. The
# kernel started SLAAC when the link came up, so on an IPv6-only subnet it is normally
# done by then and this wait returns at once.
DEFAULT_RA_TIMEOUT = 3.0


class NetworkError(Exception):
    """Bring-up failed; ``state`` holds what was done so far (for tear-down)."""

    def __init__(self, message: str, state: NetState) -> None:
        super().__init__(message)
        self.state = state


@dataclass
class NetRequest:
    """What to bring up. ``ip`` is the parsed ``ip=`` (None: DHCP on first carrier)."""

    ip: IpConfig | None = None
    device: str | None = None
    carrier_timeout: float = DEFAULT_CARRIER_TIMEOUT
    dhcp_timeout: float = DEFAULT_DHCP_TIMEOUT
    ra_timeout: float = DEFAULT_RA_TIMEOUT
    sys_class_net: str = "/sys/class/net"
    # Written only inside an initramfs (the caller decides); never the host's file.
    resolv_conf: str | None = None
    backend: str = "auto"


@dataclass
class NetState:
    """What bring-up did; serialised into ``seed.json``."""

    backend: str
    method: str
    interface: str | None = None
    address: str | None = None
    gateway: str | None = None
    dns: list[str] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    added_address: bool = False
    added_route: bool = False
    carrier_ms: float | None = None
    configure_ms: float | None = None
    teardown: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    name: str

    def link_up(self, ifname: str) -> None: ...
    def link_down(self, ifname: str) -> None: ...
    def configure(self, ifname: str, lease: Lease) -> tuple[bool, bool]: ...
    def deconfigure(self, state: NetState) -> str: ...
    def dhcp(self, ifname: str, timeout: float) -> Lease: ...


def _import_pyroute2() -> types.ModuleType:
    """Import the parts of pyroute2 bring-up needs, skipping its package ``__init__``.

    The package module is registered by hand with the real ``__path__``; submodules
    import each other by absolute name (``from pyroute2.netlink import ...``), which
    resolves through that path exactly as with the full package.
    """
    if "pyroute2" not in sys.modules:
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec("pyroute2")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("pyroute2 is not installed")
        package = types.ModuleType("pyroute2")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        sys.modules["pyroute2"] = package
    import pyroute2.iproute.linux as linux

    return linux


def pyroute2_available() -> bool:
    import importlib.machinery

    return importlib.machinery.PathFinder.find_spec("pyroute2") is not None


class Pyroute2Backend:
    name = "pyroute2"

    def __init__(self) -> None:
        linux = _import_pyroute2()
        self._ipr = linux.IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def _index(self, ifname: str) -> int:
        found = self._ipr.link_lookup(ifname=ifname)
        if not found:
            raise LookupError(f"no link named {ifname}")
        return int(found[0])

    def link_up(self, ifname: str) -> None:
        self._ipr.link("set", index=self._index(ifname), state="up")

    def link_down(self, ifname: str) -> None:
        self._ipr.link("set", index=self._index(ifname), state="down")

    def configure(self, ifname: str, lease: Lease) -> tuple[bool, bool]:
        index = self._index(ifname)
        net = ipaddress.IPv4Interface(lease.cidr).network
        self._ipr.addr("replace", index=index, address=lease.address, prefixlen=lease.prefixlen,
                       broadcast=str(net.broadcast_address) if lease.prefixlen < 31 else None)
        route = False
        if lease.gateway:
            self._ipr.route("replace", dst="0.0.0.0/0", gateway=lease.gateway, oif=index)
            route = True
        return True, route

    def deconfigure(self, state: NetState) -> str:
        done: list[str] = []
        if state.interface and state.added_route and state.gateway:
            try:
                self._ipr.route("del", dst="0.0.0.0/0", gateway=state.gateway,
                                oif=self._index(state.interface))
                done.append("default route removed")
            except Exception as exc:  # an already-gone route is fine; say what happened
                done.append(f"default route: {exc}")
        if state.interface and state.added_address and state.address:
            address, _, prefix = state.address.partition("/")
            try:
                self._ipr.addr("del", index=self._index(state.interface), address=address,
                               prefixlen=int(prefix))
                done.append(f"{state.address} removed")
            except Exception as exc:
                done.append(f"address: {exc}")
        for ifname in state.raised:
            try:
                self.link_down(ifname)
                done.append(f"{ifname} down")
            except Exception as exc:
                done.append(f"{ifname}: {exc}")
        return ", ".join(done) or "nothing to undo"

    def dhcp(self, ifname: str, timeout: float) -> Lease:
        from bootseed.early import dhcp4

        return dhcp4.exchange(ifname, timeout)


class KlibcBackend:
    """The ``ipconfig`` binary from klibc-utils (always in a Debian initramfs) for DHCP and
    addresses; link flags and address removal through plain socket ioctls (stdlib)."""

    name = "klibc-ipconfig"

    # klibc's ipconfig always describes its result here; the path is not configurable.
    run_dir = "/run"

    def __init__(self) -> None:
        binary = shutil.which("ipconfig") or _first_existing(
            ["/usr/lib/klibc/bin/ipconfig", "/bin/ipconfig"])
        if binary is None:
            raise FileNotFoundError("neither pyroute2 nor klibc's ipconfig is available")
        self.binary = binary

    def link_up(self, ifname: str) -> None:
        _set_link_flag(ifname, up=True)

    def link_down(self, ifname: str) -> None:
        _set_link_flag(ifname, up=False)

    def configure(self, ifname: str, lease: Lease) -> tuple[bool, bool]:
        if lease.applied:
            return True, bool(lease.gateway)
        spec = f"{lease.address}::{lease.gateway or ''}:{_netmask(lease.prefixlen)}::{ifname}:off"
        self._ipconfig(["-t", "5", "-c", "none", "-d", spec], 10.0)
        return True, bool(lease.gateway)

    def dhcp(self, ifname: str, timeout: float) -> Lease:
        conf = Path(self.run_dir) / f"net-{ifname}.conf"
        self._ipconfig(["-t", str(max(1, int(timeout))), "-c", "dhcp", "-d", ifname], timeout + 5)
        lease = read_klibc_conf(conf)
        lease.applied = True
        return lease

    def _ipconfig(self, args: list[str], limit: float) -> None:
        proc = subprocess.run([self.binary, *args], capture_output=True, text=True,
                              timeout=limit, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise OSError(f"ipconfig {' '.join(args)} failed ({proc.returncode}): {tail[0]}")

    def deconfigure(self, state: NetState) -> str:
        done: list[str] = []
        if state.interface and state.added_address:
            # Setting 0.0.0.0 removes the IPv4 address; its routes go with it.
            _set_ipv4_address(state.interface, "0.0.0.0")
            done.append(f"{state.address} removed")
        for ifname in state.raised:
            _set_link_flag(ifname, up=False)
            done.append(f"{ifname} down")
        return ", ".join(done) or "nothing to undo"


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
IFF_UP = 0x1


def _set_link_flag(ifname: str, up: bool) -> None:
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        name = ifname.encode()[:15]
        got = fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH14x", name, 0))
        flags = struct.unpack("16sH14x", got)[1]
        flags = flags | IFF_UP if up else flags & ~IFF_UP
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", name, flags))


def _set_ipv4_address(ifname: str, address: str) -> None:
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sockaddr = struct.pack("=H2s4s8x", socket.AF_INET, b"\0\0", socket.inet_aton(address))
        fcntl.ioctl(sock, SIOCSIFADDR, struct.pack("16s16s8x", ifname.encode()[:15], sockaddr))


def _first_existing(paths: list[str]) -> str | None:
    return next((p for p in paths if os.access(p, os.X_OK)), None)


def _netmask(prefixlen: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask)


def read_klibc_conf(path: Path) -> Lease:
    """Parse klibc ipconfig's shell-style ``/run/net-<dev>.conf``."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    address = values.get("IPV4ADDR")
    if not address or address == "0.0.0.0":
        raise ValueError(f"{path}: no IPV4ADDR")
    netmask = values.get("IPV4NETMASK", "255.255.255.255")
    prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    gateway = values.get("IPV4GATEWAY") or None
    dns = [values[k] for k in ("IPV4DNS0", "IPV4DNS1") if values.get(k, "0.0.0.0") != "0.0.0.0"]
    return Lease(address=address, prefixlen=prefix,
                 gateway=None if gateway == "0.0.0.0" else gateway, dns=dns,
                 lease_time=int(values["DHCPLEASETIME"]) if values.get(
                     "DHCPLEASETIME", "").isdigit() else None)


def make_backend(choice: str = "auto") -> Backend:
    if choice == "pyroute2" or (choice == "auto" and pyroute2_available()):
        return Pyroute2Backend()
    if choice in ("auto", "klibc-ipconfig"):
        return KlibcBackend()
    raise ValueError(f"unknown network backend {choice!r}; use auto, pyroute2 or klibc-ipconfig")


def candidate_links(sys_class_net: str = "/sys/class/net") -> list[str]:
    """Ethernet links in kernel index order (``lo``, tunnels, wireless-less types excluded)."""
    found: list[tuple[int, str]] = []
    for entry in Path(sys_class_net).iterdir():
        if entry.name == "lo" or (entry / "wireless").exists() or (entry / "bridge").exists():
            continue
        if _read(entry / "type") != ARPHRD_ETHER:
            continue
        try:
            index = int(_read(entry / "ifindex") or "0")
        except ValueError:
            index = 0
        found.append((index, entry.name))
    return [name for _, name in sorted(found)]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        # carrier of a link that is down reads as EINVAL: treat as "no carrier".
        return None


def wait_for_carrier(names: list[str], timeout: float, sys_class_net: str = "/sys/class/net",
                     clock: Callable[[], float] = time.monotonic) -> str | None:
    """The first of ``names`` (in order) with carrier, polling until ``timeout``."""
    deadline = clock() + timeout
    while True:
        for name in names:
            if _read(Path(sys_class_net) / name / "carrier") == "1":
                return name
        if clock() >= deadline:
            return None
        time.sleep(CARRIER_POLL_S)


def bring_up(request: NetRequest, backend: Backend | None = None) -> NetState:
    """Configure one link per ``request``; raises NetworkError (with partial state)."""
    impl = backend or make_backend(request.backend)
    ip = request.ip
    method = ip.method if ip is not None else "dhcp"
    state = NetState(backend=impl.name, method=method)
    if method == "off":
        raise NetworkError("ip= says off, but the seed needs the network", state)
    wanted = request.device or (ip.device if ip is not None else None)
    names = [wanted] if wanted else candidate_links(request.sys_class_net)
    if not names:
        raise NetworkError(f"no Ethernet link in {request.sys_class_net}", state)
    started = time.monotonic()
    for name in names:
        if _read(Path(request.sys_class_net) / name / "operstate") in ("up", "unknown"):
            continue
        try:
            impl.link_up(name)
        except Exception as exc:
            raise NetworkError(f"cannot raise {name}: {exc}", state) from exc
        state.raised.append(name)
    chosen = wait_for_carrier(names, request.carrier_timeout, request.sys_class_net)
    state.carrier_ms = _ms_since(started)
    if chosen is None:
        raise NetworkError(f"no carrier on {', '.join(names)} within "
                           f"{request.carrier_timeout:g} s", state)
    state.interface = chosen
    # Links raised only to look for carrier go back down now; the chosen one stays up.
    for other in [n for n in state.raised if n != chosen]:
        impl.link_down(other)
    state.raised = [n for n in state.raised if n == chosen]
    started = time.monotonic()
    try:
        if method == "static":
            assert ip is not None and ip.address is not None and ip.prefixlen is not None
            lease = Lease(address=ip.address, prefixlen=ip.prefixlen, gateway=ip.gateway,
                          dns=list(ip.dns))
        else:
            try:
                lease = impl.dhcp(chosen, request.dhcp_timeout)
            except Exception as exc:
                return _router_advertisement(request, state, chosen, exc, started)
            if ip is not None and ip.dns:
                lease.dns = list(ip.dns)
        state.added_address, state.added_route = impl.configure(chosen, lease)
    except NetworkError:
        raise
    except Exception as exc:
        state.configure_ms = _ms_since(started)
        raise NetworkError(f"{method} on {chosen}: {exc}", state) from exc
    state.configure_ms = _ms_since(started)
    state.address, state.gateway, state.dns = lease.cidr, lease.gateway, list(lease.dns)
    if request.resolv_conf and lease.dns:
        Path(request.resolv_conf).write_text(
            "".join(f"nameserver {server}\n" for server in lease.dns), encoding="ascii")
    return state


def _router_advertisement(request: NetRequest, state: NetState, ifname: str,
                          dhcp_error: Exception, started: float) -> NetState:
    """DHCPv4 failed: an IPv6-only subnet still serves when a router advertisement gave
    the link a global address and a default route (the kernel applied both itself)."""
    from bootseed.early import ra

    try:
        got = ra.wait_for_router(ifname, request.ra_timeout)
    except OSError as exc:
        state.configure_ms = _ms_since(started)
        raise NetworkError(f"neither DHCPv4 nor IPv6 router advertisement on {ifname}: "
                           f"DHCPv4: {dhcp_error}; RA: {exc}", state) from dhcp_error
    state.configure_ms = _ms_since(started)
    state.method = "ra"
    state.address, state.gateway = got.address, got.router
    return state


def tear_down(state: NetState, backend: Backend) -> str:
    """Undo what bring-up did (see the module docstring for why); returns what was done."""
    state.teardown = backend.deconfigure(state)
    return state.teardown


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)
