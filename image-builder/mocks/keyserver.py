"""An OpenPGP keyserver speaking HKP's lookup protocol, for the lab.

``GET /pks/lookup?op=get&search=0x<KEYID or FINGERPRINT>`` answers the
ASCII-armoured public key (``application/pgp-keys``) or 404, as a public
keyserver does; ``options=mr`` (machine readable) changes nothing here. Keys
are looked up by fingerprint, long key id or short key id, case-insensitive.
"""

from __future__ import annotations

import urllib.parse

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer


class _HkpHandler(LoggingHandler):
    server: HkpKeyserver

    def do_GET(self) -> None:
        self.record()
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != "/pks/lookup":
            self.reply(404, b"not found\n")
            return
        query = urllib.parse.parse_qs(parts.query)
        if query.get("op", [""])[0] != "get":
            self.reply(501, b"only op=get is implemented\n")
            return
        search = query.get("search", [""])[0].upper()
        search = search[2:] if search.startswith("0X") else search
        armored = self.server.find(search)
        if armored is None:
            self.reply(404, b"No results found\n")
            return
        self.reply(200, armored.encode(), "application/pgp-keys")


class HkpKeyserver(MockServer):
    def __init__(self, keys: dict[str, str], host: str = "127.0.0.1", port: int = 0) -> None:
        """``keys``: fingerprint (40 hex digits) -> armoured public key."""
        super().__init__(_HkpHandler, host, port)
        self.keys = {fpr.upper(): armored for fpr, armored in keys.items()}

    def find(self, search: str) -> str | None:
        if len(search) not in (8, 16, 40) or not all(c in "0123456789ABCDEF" for c in search):
            return None
        for fingerprint, armored in self.keys.items():
            if fingerprint.endswith(search):
                return armored
        return None
