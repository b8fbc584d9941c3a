"""The one problem type: something wrong with the input or a step, and where.

Every stage reports problems the same way, so the runner, the status file and
``--json`` output pass them on without converting. ``where`` names the place
(a kernel parameter, a part, a URL, a YAML line, a module) and never quotes a
secret-bearing value; ``message`` says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    def from_dict(cls, data: Any, default: Level = Level.ERROR) -> Problem:
        """Read one problem from JSON; raises ``ValueError`` on anything malformed.
        ``default`` is the level of a problem written before problems had one."""
        if not isinstance(data, dict):
            raise ValueError("a problem must be an object")
        where, message = data.get("where"), data.get("message")
        if not isinstance(where, str) or not isinstance(message, str):
            raise ValueError("a problem needs string 'where' and 'message'")
        level = data.get("level", default)
        if not isinstance(level, str):
            raise ValueError("a problem's 'level' must be a string")
        try:
            return cls(where, message, Level.parse(level))
        except ValueError:
            raise ValueError(f"a problem's 'level' is {level!r}; expected one of "
                             f"{', '.join(Level)}") from None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def problems_to_json(problems: Iterable[Problem]) -> list[dict[str, str]]:
    return [problem.to_dict() for problem in problems]


def problems_from_json(data: Any, default: Level = Level.ERROR) -> list[Problem]:
    """A JSON list of problems; ``ValueError`` names the first bad entry by index."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"problems: expected a list, got {type(data).__name__}")
    problems = []
    for index, item in enumerate(data):
        try:
            problems.append(Problem.from_dict(item, default))
        except ValueError as exc:
            raise ValueError(f"problems[{index}]: {exc}") from None
    return problems
