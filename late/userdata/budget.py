"""The byte budget shared by everything one engine run creates beyond its input."""

from __future__ import annotations


class BudgetExceeded(Exception):
    """Raised by ``Budget.charge`` when the cap would be passed; nothing was charged."""


class Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def charge(self, amount: int) -> None:
        if self.used + amount > self.limit:
            raise BudgetExceeded(
                f"size cap of {self.limit} bytes reached ({self.used} already used, "
                f"{amount} more needed)"
            )
        self.used += amount
