"""The one problem type: something wrong with the input or a step, and where.

Every stage reports problems the same way, so the runner, the status file and
``--json`` output pass them on without converting. ``where`` names the place
(a kernel parameter, a part, a URL, a YAML line, a module) and never quotes a
secret-bearing value; ``message`` says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """How bad a problem is. ``ERROR``: something was not done. ``WARNING``: it
    was done, perhaps not as meant. ``NOTE``: worth knowing, nothing is wrong."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @classmethod
    def parse(cls, text: str) -> Level:
        """Read a level back from a status file; older files said ``info``."""
        word = text.strip().lower()
        if word == "info":
            return cls.NOTE
        return cls(word)


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    level: Level = Level.ERROR

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message, "level": str(self.level)}

    @classmethod
    def from_dict(cls, data: Any) -> Problem:
        """Read one problem from JSON; raises ``ValueError`` on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("a problem must be an object")
        where, message = data.get("where"), data.get("message")
        if not isinstance(where, str) or not isinstance(message, str):
            raise ValueError("a problem needs string 'where' and 'message'")
        level = data.get("level", Level.ERROR)
        if not isinstance(level, str):
            raise ValueError("a problem's 'level' must be a string")
        return cls(where, message, Level.parse(level))

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"
