"""Generate ``late/modindex.py`` and the module table of ``docs/modules.md`` from
the modules' own specs (``MODULE = ModuleSpec(...)`` in ``late/modules/*.py``),
so a module's stage, order, frequency, keys and aliases are written once.

    .venv/bin/python -m bootseed.late.specindex --write   # regenerate both files
    .venv/bin/python -m bootseed.late.specindex --check   # exit 1 if either is stale

A developer tool, never run at boot: it imports every module file. It refuses
specs that would make the order or the schema ambiguous (two modules with the
same order in one stage, two owners of one top-level key).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bootseed.late.model import ModuleFacts, Stage
from bootseed.late.registry import load_registry
from bootseed.late.schema import RUNNER_OWNER, SchemaConflictError, key_owners

WRITE_COMMAND = ".venv/bin/python -m bootseed.late.specindex --write"
MODINDEX = Path(__file__).with_name("modindex.py")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "modules.md"
BEGIN = "<!-- BEGIN GENERATED: module table -->"
END = "<!-- END GENERATED -->"
_LINE = 100  # ruff's line length; the generated module must pass it


class SpecIndexError(Exception):
    """The specs cannot be indexed as they are, or a target file is unusable."""


@dataclass(frozen=True)
class ModuleRow:
    file_name: str  # under late/modules/, without .py
    facts: ModuleFacts
    owned_keys: tuple[str, ...]


@dataclass(frozen=True)
class SpecFacts:
    modules: tuple[ModuleRow, ...]  # by stage, then order
    runner_keys: tuple[str, ...]


def collect() -> SpecFacts:
    """Every module file's spec, imported; refuses what would be ambiguous."""
    registry = load_registry()
    if registry.problems:
        raise SpecIndexError("; ".join(f"{p.where}: {p.message}" for p in registry.problems))
    try:
        owners = key_owners(registry)
    except SchemaConflictError as exc:
        raise SpecIndexError(str(exc)) from exc
    rows = []
    for name, spec in registry.specs.items():
        owned = tuple(sorted(key for key, owner in owners.items() if owner == spec.name))
        file_name = registry.meta(name).where.rsplit(".", 1)[1]
        rows.append(ModuleRow(file_name, spec.facts(), owned))
    runner = tuple(sorted(key for key, owner in owners.items() if owner == RUNNER_OWNER))
    return SpecFacts(in_default_order(rows), runner)


def in_default_order(rows: Iterable[ModuleRow]) -> tuple[ModuleRow, ...]:
    """By stage, then order; two modules with one order in a stage are refused,
    since only their names would decide which runs first."""
    stages = list(Stage)
    ordered = sorted(rows, key=lambda r: (stages.index(r.facts.stage), r.facts.order,
                                          r.facts.name))
    for before, after in itertools.pairwise(ordered):
        a, b = before.facts, after.facts
        if (a.stage, a.order) == (b.stage, b.order):
            raise SpecIndexError(f"modules {a.name} and {b.name} both have order {a.order} "
                                 f"in the {a.stage} stage; give one of them a free number")
    return tuple(ordered)


# -- late/modindex.py ----------------------------------------------------------

_MODINDEX_HEAD = f'''"""What the runner must know about each module file before importing it.

GENERATED from the ``MODULE`` specs in ``late/modules/*.py`` by
``{WRITE_COMMAND.removeprefix(".venv/bin/")}``: do not edit. Change the
module's spec and run that command (tests/late/test_specindex.py fails while
this file is stale).

Planning a boot needs every module's stage, order, default frequency,
activating keys and aliases, but only the modules that will run need their
code. This table, keyed by file name under ``late/modules/``, lets the registry
plan without importing the rest. A module file missing here is imported at
startup, so a new module works before the index is regenerated; it only costs
its import on every boot until then.
"""

from __future__ import annotations

from bootseed.late.model import Frequency, ModuleFacts, Stage

INDEX: dict[str, ModuleFacts] = {{
'''


def _strings(label: str, items: Iterable[str], indent: str) -> list[str]:
    quoted = [json.dumps(item) for item in items]
    one = f"({quoted[0]},)" if len(quoted) == 1 else f"({', '.join(quoted)})"
    line = f"{indent}{label}={one},"
    if len(line) <= _LINE:
        return [line]
    return [f"{indent}{label}=(", *(f"{indent}    {q}," for q in quoted), f"{indent}),"]


def render_modindex(facts: SpecFacts) -> str:
    lines: list[str] = []
    stage: Stage | None = None
    for row in facts.modules:
        f = row.facts
        if f.stage is not stage:
            stage = f.stage
            lines.append(f"    # {stage} stage, in default order")
        pad = " " * 8
        lines += [
            f"    {json.dumps(row.file_name)}: ModuleFacts(",
            f"{pad}name={json.dumps(f.name)},",
            f"{pad}stage=Stage.{f.stage.name},",
            f"{pad}order={f.order},",
            f"{pad}frequency=Frequency.{f.frequency.name},",
            *_strings("activate_keys", f.activate_keys, pad),
            *_strings("aliases", f.aliases, pad),
            "    ),",
        ]
    return _MODINDEX_HEAD + "\n".join(lines) + "\n}\n"


# -- docs/modules.md -------------------------------------------------------------

def _codes(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items) or "—"


def render_table(facts: SpecFacts) -> str:
    lines = [
        BEGIN,
        f"<!-- generated from the ModuleSpecs by `{WRITE_COMMAND}`; "
        "edit the specs, not this table -->",
        "",
        "| module | stage | order | default frequency | top-level keys it owns | aliases |",
        "|---|---|---|---|---|---|",
    ]
    for row in facts.modules:
        f = row.facts
        link = f"[`{f.name}`](../late/modules/{row.file_name}.py)"
        lines.append(f"| {link} | {f.stage} | {f.order} | {f.frequency} | "
                     f"{_codes(row.owned_keys)} | {_codes(f.aliases)} |")
    lines += ["", f"Keys the runner reads itself: {_codes(facts.runner_keys)}.", END]
    return "\n".join(lines)


def splice(document: str, block: str, where: Path) -> str:
    """``document`` with the text from BEGIN to END replaced by ``block``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise SpecIndexError(f"{where}: needs the markers {BEGIN!r} and then {END!r}")
    return document[:start] + block + document[end + len(END):]


# -- both ------------------------------------------------------------------------

def expected_files(modindex: Path = MODINDEX, docs: Path = DOCS) -> dict[Path, str]:
    """What each generated file must contain, from the specs as they are now."""
    facts = collect()
    try:
        current_docs = docs.read_text(encoding="utf-8")
    except OSError as exc:  # e.g. an installed package, which has no docs/
        raise SpecIndexError(f"{docs}: {exc.strerror} (run this in a source checkout)") from exc
    return {modindex: render_modindex(facts),
            docs: splice(current_docs, render_table(facts), docs)}


def _current(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def stale_files(modindex: Path = MODINDEX, docs: Path = DOCS) -> list[Path]:
    return [path for path, text in expected_files(modindex, docs).items()
            if _current(path) != text]


def write_files(modindex: Path = MODINDEX, docs: Path = DOCS) -> list[Path]:
    """Rewrite the generated files that differ; the ones written."""
    written = []
    for path, text in expected_files(modindex, docs).items():
        if _current(path) != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bootseed.late.specindex",
        description="regenerate late/modindex.py and the docs/modules.md module table "
                    "from the modules' specs")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the files that are stale")
    mode.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files()
            for path in stale:
                print(f"stale: {path} (run {WRITE_COMMAND})")
            return 1 if stale else 0
        for path in write_files():
            print(f"wrote {path}")
    except SpecIndexError as exc:
        print(f"specindex: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
