"""A threaded HTTP server on loopback with a request log: the base of every mock.

Mocks stand in for a cloud only; they speak the real protocol on 127.0.0.1
(or an address inside a network namespace the test made) and never anything
else. Subclasses provide a ``BaseHTTPRequestHandler`` subclass.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client: str
    at: float = field(default_factory=time.time)


class LoggingHandler(BaseHTTPRequestHandler):
    """Handler base: records every request on the server before answering."""

    server: MockServer
    protocol_version = "HTTP/1.1"
    body_limit: ClassVar[int] = 1024 * 1024

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, self.body_limit)) if length else b""

    def record(self, body: bytes = b"") -> LoggedRequest:
        entry = LoggedRequest(
            method=self.command,
            path=self.path,
            headers={k: v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0],
        )
        self.server.log_request_entry(entry)
        return entry

    def reply(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class MockServer(ThreadingHTTPServer):
    """Start with ``with Server(...) as srv:``; ``srv.url`` is where it listens."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[LoggingHandler], host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), handler)
        self._lock = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def log_request_entry(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[LoggedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path.startswith(path_prefix) and (method is None or r.method == method)
            ]

    def start(self) -> MockServer:
        self._thread = threading.Thread(target=self.serve_forever, name=type(self).__name__)
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
