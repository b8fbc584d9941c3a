"""A mock OpenStack (Nova) metadata service that speaks the real protocol.

``GET /openstack`` and ``/openstack/`` list the versions, one per line;
``GET /openstack/<version>/<file>`` serves the instance's files under any
listed version, each only from the version that introduced it on Nova
(``network_data.json`` from 2015-10-15, ``vendor_data2.json`` from
2016-10-06), and 404 for a file the instance does not have. Every other path
is a 404. Listens on loopback (or an address inside a namespace the test
made), never anywhere else.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer

VERSIONS = ("2012-08-10", "2013-04-04", "2015-10-15", "2016-10-06", "2018-08-27", "latest")
FILES = ("meta_data.json", "user_data", "vendor_data.json", "vendor_data2.json",
         "network_data.json")
# The first version that has the file; others are in every version.
INTRODUCED = {"network_data.json": "2015-10-15", "vendor_data2.json": "2016-10-06"}


class _OpenStackHandler(LoggingHandler):
    server: MockOpenStack

    def do_GET(self) -> None:
        self.record()
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/openstack", "/openstack/"):
            self.reply(200, "".join(f"{v}\n" for v in self.server.versions).encode())
            return
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "openstack" or parts[2] not in self.server.versions:
            self.reply(404, b"not found\n")
            return
        body = self.server.file_for(parts[2], parts[3])
        if body is None:
            self.reply(404, b"not found\n")
            return
        kind = "application/json" if parts[3].endswith(".json") else "text/plain"
        self.reply(200, body, kind)

    do_HEAD = do_GET


class MockOpenStack(MockServer):
    """``with MockOpenStack({"meta_data.json": b"{...}"}) as nova: nova.url``."""

    def __init__(self, files: dict[str, bytes], versions: tuple[str, ...] = VERSIONS,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        unknown = set(files) - set(FILES)
        if unknown:
            raise ValueError(f"unknown files {sorted(unknown)}; known: {', '.join(FILES)}")
        super().__init__(_OpenStackHandler, host, port)
        self.files = dict(files)
        self.versions = versions

    def file_for(self, version: str, name: str) -> bytes | None:
        introduced = INTRODUCED.get(name)
        if introduced is not None and version != "latest" and version < introduced:
            return None
        return self.files.get(name)

    @classmethod
    def from_seed_dir(cls, directory: str | Path, **kwargs: Any) -> MockOpenStack:
        """Serve the files of ``directory`` that have the service's names
        (``meta_data.json`` required, the rest optional)."""
        base = Path(directory)
        files = {name: (base / name).read_bytes() for name in FILES if (base / name).is_file()}
        if "meta_data.json" not in files:
            raise ValueError(f"{base}: no meta_data.json")
        json.loads(files["meta_data.json"])  # a broken seed is the test's mistake: say so now
        return cls(files, **kwargs)
