"""``#include`` / ``#include-once`` lists and the root-only include-once cache."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IncludeUrl:
    url: str
    once: bool
    line: int


def parse_include_list(text: str, once: bool) -> list[IncludeUrl]:
    """URLs of an include part, one a line, as cloud-init reads them.

    A ``#include-once`` line turns caching on for the URLs after it (the URL may
    follow on the same line), ``#include`` turns it off again; other ``#`` lines
    and blank lines are skipped. ``once`` is the starting state (a MIME part of
    type ``text/x-include-once-url`` starts cached).
    """
    urls: list[IncludeUrl] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        lowered = line.lower()
        if lowered.startswith("#include-once"):
            line = line[len("#include-once") :].strip()
            once = True
        elif lowered.startswith("#include"):
            line = line[len("#include") :].strip()
            once = False
        if not line or line.startswith("#"):
            continue
        urls.append(IncludeUrl(line, once, number))
    return urls


class IncludeCache:
    """Fetched ``#include-once`` bodies, one file per URL (dir 0700, files 0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, url: str) -> Path:
        return self.directory / hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()

    def get(self, url: str) -> bytes | None:
        try:
            return self.path_for(url).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, url: str, body: bytes) -> None:
        from bootseed.contract.atomicfile import atomic_write

        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        atomic_write(self.path_for(url), body, 0o600)
