"""The one budget every expansion of one engine run charges: bytes, nodes and time.

Everything the engine creates beyond its input charges it: gzip output,
fetched include bodies, rendered templates (bytes); YAML documents with their
aliases expanded, JSON patches and the values they add or copy (nodes); and
all the work together (a deadline, paused while waiting for the network).
Whichever runs out first stops that one expansion with ``BudgetExceeded``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class BudgetExceeded(Exception):
    """Raised when a cap would be passed; nothing was charged."""


class Budget:
    def __init__(
        self,
        limit: int,
        *,
        max_nodes: int | None = None,
        seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.used = 0
        self.max_nodes = max_nodes
        self.nodes = 0
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds if seconds is not None else None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def nodes_remaining(self) -> int | None:
        return None if self.max_nodes is None else max(0, self.max_nodes - self.nodes)

    def charge(self, amount: int) -> None:
        if self.used + amount > self.limit:
            raise BudgetExceeded(
                f"size cap of {self.limit} bytes reached ({self.used} already used, "
                f"{amount} more needed)"
            )
        self.used += amount

    def charge_nodes(self, count: int) -> None:
        if self.max_nodes is not None and self.nodes + count > self.max_nodes:
            raise BudgetExceeded(
                f"node cap of {self.max_nodes} reached ({self.nodes} already used, "
                f"{count} more needed)"
            )
        self.nodes += count

    def check_time(self) -> None:
        if self._deadline is not None and self._clock() > self._deadline:
            raise BudgetExceeded(f"time cap of {self.seconds:g} s reached")

    @property
    def deadline(self) -> float | None:
        return self._deadline

    def clock(self) -> float:
        return self._clock()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (waiting for a download) is not charged."""
        start = self._clock()
        try:
            yield
        finally:
            if self._deadline is not None:
                self._deadline += self._clock() - start
