"""Benchmarks share helpers with the tests through ``testsupport``, never by importing ``tests``."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_bench_does_not_import_tests() -> None:
    scripts = sorted(BENCH.glob("*.py"))
    assert scripts
    offenders = {path.name: sorted(name for name in _imported(path)
                                   if name == "tests" or name.startswith("tests."))
                 for path in scripts}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert "testsupport.runenv" in _imported(BENCH / "late_bench.py")
