"""A small syslog receiver: UDP and TCP on one port of 127.0.0.1 (or a namespace's address).

It parses what arrives as RFC 5424 (``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG``)
or RFC 3164 (``<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG``, what rsyslog's traditional
forward format sends) and keeps every message. TCP takes both framings of RFC 6587:
octet counting (``LEN SP MSG``) and a newline after each message. Start with
``with SyslogReceiver() as receiver:``; ``receiver.port`` is where both listen.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

MAX_MESSAGE = 64 * 1024
_PRI = re.compile(rb"<(\d{1,3})>")
_RFC5424 = re.compile(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\](?:\[.*?\])*) ?(.*)", re.S)
_RFC3164 = re.compile(r"([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ([^:\[\s]+)(?:\[(\d+)\])?: ?"
                      r"(.*)", re.S)


@dataclass(frozen=True)
class SyslogMessage:
    protocol: str  # "udp" or "tcp"
    format: str  # "rfc5424", "rfc3164" or "unknown"
    facility: int
    severity: int
    hostname: str
    app_name: str
    procid: str
    message: str
    raw: bytes
    client: str
    at: float = field(default_factory=time.time)


def parse_message(raw: bytes, protocol: str = "udp", client: str = "") -> SyslogMessage:
    """One message; anything without a valid ``<PRI>`` is kept as ``unknown`` (pri 13)."""
    match = _PRI.match(raw)
    pri = int(match.group(1)) if match and int(match.group(1)) <= 191 else 13
    rest = raw[match.end():] if match else raw
    text = rest.decode("utf-8", errors="replace").rstrip("\r\n")
    facility, severity = divmod(pri, 8)
    found = _RFC5424.fullmatch(text) if match else None
    if found is not None:
        _, host, app, procid, _, _, message = found.groups()
        return SyslogMessage(protocol, "rfc5424", facility, severity, _nil(host), _nil(app),
                             _nil(procid), message.removeprefix("\ufeff"), raw, client)
    old = _RFC3164.fullmatch(text) if match else None
    if old is not None:
        _, host, tag, procid, message = old.groups()
        return SyslogMessage(protocol, "rfc3164", facility, severity, host, tag, procid or "",
                             message, raw, client)
    return SyslogMessage(protocol, "unknown", facility, severity, "", "", "", text, raw, client)


def _nil(value: str) -> str:
    return "" if value == "-" else value


def split_stream(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Complete messages at the front of a TCP stream and what is left over."""
    messages: list[bytes] = []
    while buffer:
        counted = re.match(rb"(\d{1,6}) ", buffer)
        if counted is not None:  # octet counting
            length = int(counted.group(1))
            end = counted.end() + length
            if len(buffer) < end:
                break
            messages.append(buffer[counted.end():end])
            buffer = buffer[end:]
            continue
        newline = buffer.find(b"\n")
        if newline < 0:
            if len(buffer) > MAX_MESSAGE:  # a runaway line: keep it, cut
                messages.append(buffer)
                buffer = b""
            break
        line, buffer = buffer[:newline], buffer[newline + 1:]
        if line.strip():
            messages.append(line)
    return messages, buffer


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        data = self.request[0]
        self.server.receiver.add(parse_message(data, "udp", self.client_address[0]))


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(1.0)
        self.server.receiver.connections.add(sock)
        buffer = b""
        while not self.server.receiver.stopping.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            messages, buffer = split_stream(buffer + chunk)
            for raw in messages:
                self.server.receiver.add(parse_message(raw, "tcp", self.client_address[0]))
        if buffer.strip():
            self.server.receiver.add(parse_message(buffer, "tcp", self.client_address[0]))


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: SyslogReceiver


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: SyslogReceiver


class SyslogReceiver:
    """UDP and TCP syslog on the same port (an ephemeral one when ``port`` is 0)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self.messages: list[SyslogMessage] = []
        self.stopping = threading.Event()
        # Open TCP connections, closed by stop() so a client sees the restart at once.
        self.connections: set[socket.socket] = set()
        self.tcp = _TcpServer((host, port), _TcpHandler)
        self.port = int(self.tcp.server_address[1])
        self.udp = _UdpServer((host, self.port), _UdpHandler)
        self.tcp.receiver = self.udp.receiver = self
        self.host = host
        self._threads: list[threading.Thread] = []

    def add(self, message: SyslogMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def snapshot(self) -> list[SyslogMessage]:
        with self._lock:
            return list(self.messages)

    def from_app(self, app_name: str) -> list[SyslogMessage]:
        return [m for m in self.snapshot() if m.app_name == app_name]

    def wait_for(self, predicate: object, timeout: float) -> bool:
        """Poll until ``predicate(messages)`` is true or ``timeout`` seconds passed."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return True
            time.sleep(0.05)
        return bool(predicate(self.snapshot()))

    def start(self) -> SyslogReceiver:
        for server in (self.tcp, self.udp):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name=f"syslogd-{type(server).__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for server in (self.tcp, self.udp):
            server.shutdown()
            server.server_close()
        for sock in list(self.connections):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SyslogReceiver:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
