"""Remote syslog: the ``bootseed.syslog=`` destination, the wire format and a bounded sender.

Both stages send their own log lines to the destination named on the kernel command
line (``bootseed.syslog=udp://HOST:PORT`` or ``tcp://HOST:PORT``, port 514 when
omitted): the early stage from inside the initramfs while its network is up, the late
agent for its whole run. Lines are RFC 5424 messages (``<PRI>1 TIMESTAMP HOSTNAME
APP-NAME PROCID - - MSG``); over TCP each is ended by a newline (RFC 6587's
non-transparent framing, what rsyslog's ``@@`` sends too).

Sending never blocks a boot for long and never raises: every connect and send has a
short timeout, a name is resolved under a bound, and a line that cannot go is dropped
and counted (:attr:`SyslogSender.dropped`).
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

DEFAULT_PORT = 514
SCHEMES = ("udp", "tcp")
# user-level messages (facility 1); severities as in RFC 5424 section 6.2.1.
FACILITY_USER = 1
SEVERITY = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5,
            "info": 6, "debug": 7}
# Longer lines are cut: 2048 octets is what every receiver must accept (RFC 5425/6587
# practice; RFC 5424 requires 480, rsyslog's default limit is 8 KiB).
MAX_LINE = 2048
CONNECT_TIMEOUT_S = 2.0
RESOLVE_TIMEOUT_S = 2.0
_NILVALUE = "-"
# A socket address as getaddrinfo gives it: (host, port) or (host, port, flow, scope).
Address = tuple[Any, ...]


class SyslogTargetError(ValueError):
    """A ``bootseed.syslog=`` value that is not ``udp://HOST[:PORT]`` or ``tcp://...``."""


@dataclass(frozen=True)
class SyslogTarget:
    """Where remote log lines go."""

    protocol: str  # "udp" or "tcp"
    host: str
    port: int = DEFAULT_PORT

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"


def parse_target(value: str) -> SyslogTarget:
    """``udp://HOST[:PORT]`` or ``tcp://HOST[:PORT]`` (an IPv6 host in brackets)."""
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise SyslogTargetError(f"not a usable URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise SyslogTargetError("expected udp://HOST[:PORT] or tcp://HOST[:PORT]")
    host = parts.hostname
    if not host or parts.path not in ("", "/") or parts.query or parts.fragment \
            or parts.username is not None:
        raise SyslogTargetError("expected only a host and a port after the scheme")
    if not _valid_host(host):
        raise SyslogTargetError(f"{host!r} is not an IP address or a host name")
    if port == 0:
        raise SyslogTargetError("port 0 is not a port")
    return SyslogTarget(protocol=scheme, host=host, port=port or DEFAULT_PORT)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(
        0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
        and not label.startswith("-") for label in labels)


def format_line(message: str, *, app_name: str, hostname: str, procid: int | None = None,
                severity: int = SEVERITY["info"], facility: int = FACILITY_USER,
                timestamp: datetime.datetime | None = None) -> bytes:
    """One RFC 5424 message (no trailing newline), cut to :data:`MAX_LINE` octets."""
    when = timestamp or datetime.datetime.now(datetime.UTC)
    stamp = when.astimezone(datetime.UTC).isoformat(timespec="microseconds")
    stamp = stamp.replace("+00:00", "Z")
    header = (f"<{facility * 8 + severity}>1 {stamp} {_field(hostname, 255)} "
              f"{_field(app_name, 48)} {procid if procid is not None else _NILVALUE} "
              f"{_NILVALUE} {_NILVALUE} ")
    # One line per message: newlines would split it into several over TCP.
    text = " ".join(message.splitlines()) or _NILVALUE
    return (header + text).encode("utf-8", errors="replace")[:MAX_LINE]


def _field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, NILVALUE when empty."""
    cleaned = "".join(c for c in value if "!" <= c <= "~")[:limit]
    return cleaned or _NILVALUE


class SyslogSender:
    """Sends lines to one target; never raises, never waits longer than its timeouts.

    UDP sends each line as one datagram. TCP keeps one connection; when it breaks, the
    next line tries one new connection, and a line that still cannot go is dropped.
    """

    def __init__(self, target: SyslogTarget, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.target = target
        self.timeout = timeout
        self.sent = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._address: tuple[int, Address] | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def send(self, line: bytes) -> bool:
        with self._lock:
            try:
                self._send(line)
            except OSError as exc:
                self._close_socket()
                self.dropped += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                return False
            self.sent += 1
            return True

    def close(self) -> None:
        with self._lock:
            self._close_socket()

    def _send(self, line: bytes) -> None:
        if self.target.protocol == "udp":
            family, address = self._resolve()
            if self._sock is None:
                self._sock = socket.socket(family, socket.SOCK_DGRAM)
                self._sock.settimeout(self.timeout)
            self._sock.sendto(line, address)
            return
        framed = line + b"\n"
        if self._sock is not None:
            try:
                self._sock.sendall(framed)
                return
            except OSError:
                self._close_socket()  # a broken connection: one new try below
        family, address = self._resolve()
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(address)
            sock.sendall(framed)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def _resolve(self) -> tuple[int, Address]:
        if self._address is None:
            kind = socket.SOCK_DGRAM if self.target.protocol == "udp" else socket.SOCK_STREAM
            self._address = resolve(self.target.host, self.target.port, kind)
        return self._address

    def _close_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def resolve(host: str, port: int, kind: int,
            timeout: float = RESOLVE_TIMEOUT_S) -> tuple[int, Address]:
    """The first address ``getaddrinfo`` gives, under a time bound (it has none of its
    own); raises OSError."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal needs no resolver
        return _first(socket.getaddrinfo(host, port, type=kind, flags=socket.AI_NUMERICHOST))
    found: list[tuple[int, Address]] = []
    failed: list[OSError] = []

    def lookup() -> None:
        try:
            found.append(_first(socket.getaddrinfo(host, port, type=kind)))
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=lookup, name="syslog-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if found:
        return found[0]
    if failed:
        raise failed[0]
    raise TimeoutError(f"resolving {host} took longer than {timeout:g} s")


def _first(infos: list[tuple[Any, Any, Any, Any, Any]]) -> tuple[int, Address]:
    if not infos:
        raise OSError(f"no address for {infos!r}")
    family, _, _, _, address = infos[0]
    return int(family), tuple(address)
