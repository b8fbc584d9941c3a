"""A real HTTP server on 127.0.0.1 that answers as slowly as an attacker would.

Each path picks a way to hold a client: ``/silent`` reads the request and
never answers, ``/slow-status`` and ``/slow-headers`` drip the status line or
the headers a byte at a time, ``/trickle`` sends headers at once and then the
body a byte at a time, ``/ok`` answers at once. Every handler gives up by
itself after ``HOLD_LIMIT`` seconds or as soon as the client goes away, so a
test never leaves a thread running.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

DRIP_INTERVAL = 0.3
HOLD_LIMIT = 30.0
OK_BODY = b"#cloud-config\nruncmd: [fine]\n"


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                request += chunk
            path = request.split(b" ", 2)[1].decode("ascii", "replace")
            self.server.paths.append(path)  # type: ignore[attr-defined]
            name = path.rsplit("/", 1)[-1] or path
            self._answer(sock, name)
        except OSError:
            return

    def _answer(self, sock: socket.socket, name: str) -> None:
        # Connection: close makes http.client hand the socket to the response (the
        # case a watchdog holding only the connection object missed).
        head = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4000\r\n"
                b"Content-Type: text/plain\r\n\r\n")
        if name == "ok":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(OK_BODY), OK_BODY))
        elif name == "silent":
            self._hold(sock)
        elif name == "slow-status":
            self._drip(sock, head)
        elif name == "slow-headers":
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            self._drip(sock, b"X-Filler: " + b"a" * 4000 + b"\r\n\r\n")
        elif name == "trickle":
            sock.sendall(head + b"#")
            self._drip(sock, b" " * 4000)

    @staticmethod
    def _drip(sock: socket.socket, data: bytes) -> None:
        end = time.monotonic() + HOLD_LIMIT
        for byte in data:
            if time.monotonic() > end:
                return
            sock.sendall(bytes([byte]))
            time.sleep(DRIP_INTERVAL)

    @staticmethod
    def _hold(sock: socket.socket) -> None:
        sock.settimeout(HOLD_LIMIT)
        try:
            sock.recv(1)  # returns when the client closes or the limit passes
        except OSError:
            pass


class HostileServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
