"""A mock EC2 instance metadata service (IMDS) that speaks the real protocol.

Modes:

- ``v2-optional``: tokens work, requests without one are answered too
  (an invalid or expired token is still a 401, as on AWS);
- ``v2-required``: every metadata request needs a valid token, else 401;
- ``v1-only``: there is no token endpoint (404), as on EC2-compatible clouds.

``PUT /latest/api/token`` needs ``X-aws-ec2-metadata-token-ttl-seconds``
(1..21600, else 400) and is refused with 403 when ``X-Forwarded-For`` is set.
Faults (:class:`Fault`) inject 5xx, slow headers, slow bodies, resets,
redirect loops and oversized bodies on chosen paths. Listens on loopback (or
an address inside a namespace the test made), never anywhere else.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer

MODES = ("v2-optional", "v2-required", "v1-only")
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL = 21600
VERSIONS = ("1.0", "2009-04-04", "2021-03-23", "latest")
FAULT_KINDS = ("status", "slow-headers", "slow-body", "reset", "redirect-loop", "oversized")


@dataclass
class Fault:
    """Misbehave on requests whose path starts with ``path``.

    ``times`` limits how many requests get the fault (None: all of them).
    ``delay`` is the stall before headers (slow-headers) or the time the body
    takes to trickle out (slow-body); ``size`` the length of an oversized body,
    announced in Content-Length when ``declare_length``.
    """

    kind: str
    path: str = "/"
    method: str | None = None
    times: int | None = None
    status: int = 503
    delay: float = 5.0
    size: int = 64 * 1024 * 1024
    declare_length: bool = False
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")


class _ImdsHandler(LoggingHandler):
    server: MockImds

    def do_PUT(self) -> None:
        self.record(self.read_body())
        if self._inject():
            return
        path = urllib.parse.urlsplit(self.path).path
        if not path.endswith("/api/token") or path.count("/") != 3:
            self.reply(404, b"not found\n")
            return
        self._token()

    def do_GET(self) -> None:
        self.record()
        if self._inject():
            return
        if not self._authorised():
            self.reply(401, b"unauthorized\n")
            return
        status, body, ctype = self.server.lookup(urllib.parse.urlsplit(self.path).path)
        self.reply(status, body, ctype)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the reset fault already tore the connection down

    def _token(self) -> None:
        srv = self.server
        if srv.mode == "v1-only":
            self.reply(404, b"not found\n")
            return
        if "X-Forwarded-For" in self.headers:
            self.reply(403, b"forbidden\n")
            return
        raw = self.headers.get(TTL_HEADER)
        if raw is None or not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_TTL:
            self.reply(400, b"missing or invalid TTL\n")
            return
        ttl = int(raw)
        token = srv.issue_token(ttl)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header(TTL_HEADER, str(ttl))
        self.send_header("Content-Length", str(len(token)))
        self.end_headers()
        self.wfile.write(token.encode())

    def _authorised(self) -> bool:
        srv = self.server
        if srv.mode == "v1-only":
            return True
        token = self.headers.get(TOKEN_HEADER)
        if token is None:
            return srv.mode == "v2-optional"
        return srv.token_valid(token)

    def _inject(self) -> bool:
        fault = self.server.take_fault(self.command, urllib.parse.urlsplit(self.path).path)
        if fault is None:
            return False
        stop = self.server.stopping
        if fault.kind == "status":
            self.reply(fault.status, b"injected fault\n")
        elif fault.kind == "slow-headers":
            stop.wait(fault.delay)
            return False
        elif fault.kind == "slow-body":
            self._slow_body(fault)
        elif fault.kind == "reset":
            # SO_LINGER 0 turns close() into a TCP RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif fault.kind == "redirect-loop":
            parts = urllib.parse.urlsplit(self.path)
            target = parts.path if parts.query else parts.path + "?loop=1"
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault.kind == "oversized":
            self._oversized(fault)
        return True

    def _slow_body(self, fault: Fault) -> None:
        status, body, ctype = self.server.lookup(urllib.parse.urlsplit(self.path).path)
        body = body or b"x" * 64
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        pause = fault.delay / len(body)
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                if self.server.stopping.wait(pause):
                    break
        except OSError:
            pass
        self.close_connection = True

    def _oversized(self, fault: Fault) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if fault.declare_length:
            self.send_header("Content-Length", str(fault.size))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"\0" * 65536
        sent = 0
        try:
            while sent < fault.size and not self.server.stopping.is_set():
                piece = chunk[: fault.size - sent]
                self.wfile.write(piece)
                sent += len(piece)
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True


class MockImds(MockServer):
    """``with MockImds({"instance-id": "i-1"}, b"#cloud-config") as imds: imds.url``."""

    def __init__(
        self,
        meta_data: dict[str, Any],
        user_data: bytes | None = None,
        mode: str = "v2-optional",
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Sequence[Fault] = (),
        identity: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(_ImdsHandler, host, port)
        self.mode = mode
        self.meta_data = meta_data
        self.tree = _tree(meta_data)
        self.user_data = user_data
        self.identity = identity if identity is not None else _identity(meta_data)
        self.faults = list(faults)
        self.clock = clock
        self.stopping = threading.Event()
        self._tokens: dict[str, float] = {}
        self._fault_lock = threading.Lock()

    @classmethod
    def from_seed_dir(cls, directory: str | Path, **kwargs: Any) -> MockImds:
        """Serve a NoCloud-style seed dir: ``meta-data`` (YAML or JSON) and ``user-data``."""
        import yaml

        base = Path(directory)
        meta_path = base / "meta-data"
        raw = yaml.safe_load(meta_path.read_text()) if meta_path.exists() else {}
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"{meta_path}: expected a mapping, got {type(raw).__name__}")
        user_path = base / "user-data"
        user_data = user_path.read_bytes() if user_path.exists() else None
        return cls(ec2_meta_data(raw), user_data, **kwargs)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"

    def stop(self) -> None:
        self.stopping.set()
        super().stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up on a slow or huge answer is the point of a fault, not an error.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def issue_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._fault_lock:
            self._tokens[token] = self.clock() + ttl
        return token

    def token_valid(self, token: str) -> bool:
        with self._fault_lock:
            expiry = self._tokens.get(token)
        return expiry is not None and self.clock() < expiry

    def expire_tokens(self) -> None:
        """Every issued token expires now (the next use gets a 401)."""
        with self._fault_lock:
            self._tokens = {token: 0.0 for token in self._tokens}

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._fault_lock:
            for fault in self.faults:
                if not path.startswith(fault.path):
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.hits += 1
                return fault
        return None

    def lookup(self, path: str) -> tuple[int, bytes, str]:
        """Status, body and content type for a GET of ``path``."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return 200, "\n".join(VERSIONS).encode(), "text/plain"
        if parts[0] not in VERSIONS:
            return 404, b"not found\n", "text/plain"
        rest = parts[1:]
        if not rest:
            entries = ["dynamic", "meta-data"] + (["user-data"] if self.user_data is not None
                                                  else [])
            return 200, "\n".join(entries).encode(), "text/plain"
        if rest == ["user-data"]:
            if self.user_data is None:
                return 404, b"not found\n", "text/plain"
            return 200, self.user_data, "application/octet-stream"
        if rest[0] == "dynamic":
            if rest[1:] == ["instance-identity", "document"]:
                return 200, json.dumps(self.identity, indent=2).encode(), "text/plain"
            if rest[1:] in ([], ["instance-identity"]):
                return 200, (b"instance-identity/" if not rest[1:] else b"document"), \
                    "text/plain"
            return 404, b"not found\n", "text/plain"
        if rest[0] != "meta-data":
            return 404, b"not found\n", "text/plain"
        node: Any = self.tree
        for name in rest[1:]:
            if not isinstance(node, dict) or name not in node:
                return 404, b"not found\n", "text/plain"
            node = node[name]
        if isinstance(node, dict):
            listing = [_listing_name(k, v, path) for k, v in node.items() if not
                       k.startswith("\0")]
            return 200, "\n".join(listing).encode(), "text/plain"
        return 200, str(node).encode(), "text/plain"


def _listing_name(key: str, value: Any, path: str) -> str:
    if path.rstrip("/").endswith("meta-data/public-keys") and isinstance(value, dict):
        return f"{key}={value.get(chr(0) + 'name', key)}"
    return key + "/" if isinstance(value, dict) else key


def _tree(meta_data: dict[str, Any]) -> dict[str, Any]:
    """The served tree: dicts are directories, lists become newline-joined leaves,
    and public-keys take EC2's shape (``0=name`` -> ``0/openssh-key``)."""
    tree: dict[str, Any] = {}
    for key, value in meta_data.items():
        if key == "public-keys":
            tree[key] = _public_keys(value)
        elif isinstance(value, dict):
            tree[key] = _tree(value)
        elif isinstance(value, list | tuple):
            tree[key] = "\n".join(str(v) for v in value)
        elif value is not None:
            tree[key] = str(value)
    return tree


def _public_keys(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        named = [(f"key{i}", k) for i, k in enumerate(value.splitlines()) if k.strip()]
    elif isinstance(value, list | tuple):
        named = [(f"key{i}", str(k)) for i, k in enumerate(value)]
    elif isinstance(value, dict):
        named = [(str(n), k if isinstance(k, str) else "\n".join(k)) for n, k in value.items()]
    else:
        named = []
    return {str(i): {"\0name": name, "openssh-key": key} for i, (name, key) in enumerate(named)}


def ec2_meta_data(nocloud: dict[str, Any]) -> dict[str, Any]:
    """NoCloud-style meta-data keys mapped onto the EC2 tree."""
    out: dict[str, Any] = {k: v for k, v in nocloud.items()
                           if k not in ("local-hostname", "hostname", "public-keys",
                                        "public_keys", "launch-index")}
    out.setdefault("instance-id", "i-0000000000000000")
    host = nocloud.get("local-hostname") or nocloud.get("hostname")
    if host:
        out["local-hostname"] = host
        out.setdefault("hostname", host)
    keys = nocloud.get("public-keys", nocloud.get("public_keys"))
    if keys:
        out["public-keys"] = keys
    out.setdefault("ami-launch-index", nocloud.get("launch-index", 0))
    return out


def _identity(meta_data: dict[str, Any]) -> dict[str, Any]:
    placement = meta_data.get("placement")
    placement = placement if isinstance(placement, dict) else {}
    doc = {
        "instanceId": meta_data.get("instance-id"),
        "instanceType": meta_data.get("instance-type"),
        "imageId": meta_data.get("ami-id"),
        "availabilityZone": placement.get("availability-zone"),
        "region": placement.get("region"),
        "accountId": "000000000000",
        "version": "2017-09-30",
    }
    return {k: v for k, v in doc.items() if v is not None}
