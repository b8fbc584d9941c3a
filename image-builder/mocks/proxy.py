"""A forward HTTP proxy for the lab that records what passes through it.

A client configured with ``http://PROXY:PORT`` sends requests with an absolute
URI (``GET http://169.254.100.3/dists/lab/InRelease HTTP/1.1``). The proxy
records each and relays it to the lab server that stands behind that
guest-side address, through ``routes`` (``"169.254.100.3:80"`` ->
``127.0.0.1:PORT``). A host it has no route for gets 502: the proxy never
connects anywhere but loopback. ``CONNECT`` (HTTPS tunnels) is refused.
"""

from __future__ import annotations

import http.client
import urllib.parse

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer

_HOP_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                          "te", "trailers", "transfer-encoding", "upgrade"})


class _ProxyHandler(LoggingHandler):
    server: ForwardProxy

    def _relay(self) -> None:
        body = self.read_body()
        self.record(body)
        parts = urllib.parse.urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.reply(400, b"a forward proxy needs an absolute http:// URI\n")
            return
        port = self.server.routes.get(f"{parts.hostname}:{parts.port or 80}")
        if port is None:
            self.reply(502, b"no route to that host from the lab proxy\n")
            return
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(self.command, target, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except OSError as exc:
            self.reply(502, f"lab server behind {parts.hostname} failed: {exc}\n".encode())
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP_HEADERS and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = _relay
    do_HEAD = _relay
    do_POST = _relay

    def do_CONNECT(self) -> None:
        self.record()
        self.reply(405, b"CONNECT is not offered by the lab proxy\n")


class ForwardProxy(MockServer):
    def __init__(self, routes: dict[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        """``routes``: ``"guest-ip:port"`` -> the 127.0.0.1 port that serves it."""
        super().__init__(_ProxyHandler, host, port)
        self.routes = dict(routes)
