"""Step-by-step progress for long builds: ``[3/9] Writing disk image ... 4.2s``.

A :class:`Progress` knows how many steps there are, prints one line when a
step starts and finishes it with the elapsed time (on a terminal the same
line is completed; elsewhere a second line is printed so logs stay readable),
and keeps the timings for the build manifest.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO


@dataclass
class StepRecord:
    name: str
    seconds: float
    outcome: str = "ok"
    note: str = ""


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.records: list[StepRecord] = []
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def _emit(self, text: str, end: str = "\n") -> None:
        if not self.quiet:
            self.stream.write(text + end)
            self.stream.flush()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        """Time the block as the next step; the yielded record may get a ``note``."""
        index = len(self.records) + 1
        record = StepRecord(name=name, seconds=0.0)
        self.records.append(record)
        prefix = f"[{index}/{self.total}] {name}"
        self._emit(f"{prefix} ...", end=" " if self._tty else "\n")
        start = time.monotonic()
        try:
            yield record
        except BaseException:
            record.seconds = time.monotonic() - start
            record.outcome = "failed"
            self._emit(self._done_text(prefix, record))
            raise
        record.seconds = time.monotonic() - start
        self._emit(self._done_text(prefix, record))

    def _done_text(self, prefix: str, record: StepRecord) -> str:
        note = f" ({record.note})" if record.note else ""
        verdict = "FAILED " if record.outcome != "ok" else ""
        body = f"{verdict}{record.seconds:.1f}s{note}"
        return body if self._tty else f"{prefix} ... {body}"

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.records)
