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
        # apt asks for pool/main/git_1%253a2.39...deb: the file's own name (with its
        # epoch's "%3a" and any "+") URL-encoded once more.
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        rel = posixpath.normpath(raw).lstrip("/")
        if rel.startswith("..") or "\0" in rel:
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
