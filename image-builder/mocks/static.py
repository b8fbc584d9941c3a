"""Serve a directory read-only (a NoCloud seed URL), logging every request."""

from __future__ import annotations

import mimetypes
import posixpath
import urllib.parse
from pathlib import Path

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer


class _StaticHandler(LoggingHandler):
    server: StaticServer

    def do_GET(self) -> None:
        self.record()
        rel = posixpath.normpath(urllib.parse.urlsplit(self.path).path).lstrip("/")
        if rel.startswith(".."):
            self.reply(403)
            return
        path = self.server.root / rel
        if not path.is_file():
            self.reply(404, b"not found\n")
            return
        # A browser renders only what is served as a page (the image site test).
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.reply(200, path.read_bytes(), kind)

    do_HEAD = do_GET


class StaticServer(MockServer):
    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_StaticHandler, host, port)
        self.root = Path(root)
