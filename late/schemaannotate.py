"""``schema --annotate``: the config file with each problem marked on its line.

As cloud-init's ``schema --annotate`` lays it out: a line with problems ends
in ``# E1,W2`` (E error, W warning, N note, numbered in order), and after the
file each mark is explained. A problem without a line (a bad file as a whole)
is explained without a mark in the text.
"""

from __future__ import annotations

import re

from bootseed.contract.problems import Level, Problem

_LINE = re.compile(r" line (\d+)(?::\s*(.*))?$")
_LETTER = {Level.ERROR: "E", Level.WARNING: "W", Level.NOTE: "N"}
_TITLE = {Level.ERROR: "Errors", Level.WARNING: "Warnings", Level.NOTE: "Notes"}


def problem_line(problem: Problem) -> int | None:
    """The YAML line a problem names (``... line 5``), if any."""
    found = _LINE.search(problem.where)
    return int(found.group(1)) if found else None


def annotate(text: str, problems: list[Problem]) -> str:
    lines = text.splitlines()
    marks: dict[int, list[str]] = {}
    explained: dict[Level, list[str]] = {level: [] for level in _TITLE}
    counts = dict.fromkeys(_TITLE, 0)
    for problem in problems:
        counts[problem.level] += 1
        mark = f"{_LETTER[problem.level]}{counts[problem.level]}"
        line = problem_line(problem)
        if line is not None and 1 <= line <= len(lines):
            marks.setdefault(line, []).append(mark)
        found = _LINE.search(problem.where)
        key = found.group(2) if found and found.group(2) else None
        explained[problem.level].append(f"# {mark}: " + (f"{key}: " if key else "")
                                        + problem.message)
    out = [f"{line}\t\t# {','.join(marks[n])}" if n in marks else line
           for n, line in enumerate(lines, start=1)]
    for level, items in explained.items():
        if items:
            out += ["", f"# {_TITLE[level]}: -------------", *items]
    return "\n".join(out) + "\n"
