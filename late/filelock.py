"""One exclusive lock on a file, waited for a bounded time.

The agent's runs and the hot-attach command each hold one so two of them never
write the same state (``/run/bootseed``, ``/etc/fstab``) at once; a holder that
never lets go turns into an error after ``wait`` seconds, not a hang.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

POLL_S = 0.2


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the wait allowed."""


@contextmanager
def held(path: str | os.PathLike[str], wait: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600) for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{os.fspath(path)} held for more than {wait:g}s") from None
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)
