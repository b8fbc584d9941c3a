"""Phone-home sink: accepts POST (and GET) anywhere and records it."""

from __future__ import annotations

import urllib.parse

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer


class _SinkHandler(LoggingHandler):
    def do_POST(self) -> None:
        self.record(self.read_body())
        self.reply(200, b"ok\n")

    def do_GET(self) -> None:
        self.record()
        self.reply(200, b"ok\n")


class PhoneHomeSink(MockServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(_SinkHandler, host, port)

    def posted_forms(self) -> list[dict[str, list[str]]]:
        """Each POST body parsed as a form, in arrival order."""
        return [
            urllib.parse.parse_qs(r.body.decode("utf-8", "replace"), keep_blank_values=True)
            for r in self.requests_to("/", method="POST")
        ]
