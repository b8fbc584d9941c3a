"""Time budgets: every wait in seed discovery is charged against one deadline.

A budget is a monotonic deadline. Sub-budgets (one per source, one per request)
never outlive their parent, so a slow source cannot spend the time of the
ones after it and the whole search ends when the top budget does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class BudgetExhausted(Exception):
    """Raised by :meth:`Budget.check` when no time is left."""


class Budget:
    def __init__(self, seconds: float, clock: Clock = time.monotonic,
                 parent: Budget | None = None) -> None:
        if seconds < 0:
            raise ValueError(f"budget must not be negative, got {seconds}")
        self._clock = clock
        self.seconds = seconds
        self.started = clock()
        own_deadline = self.started + seconds
        self.deadline: float = min(own_deadline, parent.deadline) if parent else own_deadline

    def remaining(self) -> float:
        return max(0.0, self.deadline - self._clock())

    def elapsed(self) -> float:
        return self._clock() - self.started

    @property
    def exhausted(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, timeout: float) -> float:
        """``timeout`` shortened so it ends no later than this budget."""
        return max(0.0, min(timeout, self.remaining()))

    def child(self, seconds: float) -> Budget:
        """A budget of at most ``seconds`` that also ends when this one does."""
        return Budget(seconds, self._clock, parent=self)

    def check(self, what: str) -> None:
        if self.exhausted:
            raise BudgetExhausted(f"time budget of {self.seconds:g}s used up before {what}")

    def sleep(self, seconds: float) -> bool:
        """Sleep at most ``seconds`` within the budget; False when the budget ran out."""
        wait = self.cap(seconds)
        if wait > 0:
            time.sleep(wait)
        return not self.exhausted
