"""Where the image builder keeps what is expensive to make, and how it names it.

The cache root is ``$BOOTSEED_CACHE`` or ``/var/cache/bootseed``. Entries are
named by a content key (sha256 of the inputs that determine them), so a
change of input makes a new entry and an unchanged input reuses the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_CACHE_DIR = Path("/var/cache/bootseed")
CACHE_ENV = "BOOTSEED_CACHE"
KEY_LENGTH = 16


def cache_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``explicit``, else ``$BOOTSEED_CACHE``, else the default."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE_DIR


def content_key(value: Any) -> str:
    """A short stable key for a JSON-serialisable value (order of dict keys ignored)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_LENGTH]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block.

    Two builds that want the same cache entry (two pytest sessions, a demo
    beside a test run) then wait for each other instead of both building it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
