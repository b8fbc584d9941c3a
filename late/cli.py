"""The ``bootseed`` console script.

Verbs live in ``bootseed.late.commands.<verb>`` (see ``bootseed.contract.cli``
for the pattern); only the requested verb's module is imported, so
``bootseed run`` at boot does not pay for the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from functools import partial

from bootseed.contract import __version__
from bootseed.contract.cli import Program, Verb, run_program
from bootseed.contract.cli import build_parser as build_program_parser
from bootseed.late import commands as commands_pkg
from bootseed.late.pkgscan import iter_modules


def _load(module_name: str) -> Verb:
    return Verb.from_module(importlib.import_module(f"{commands_pkg.__name__}.{module_name}"))


def program() -> Program:
    found = iter_modules(commands_pkg.__path__)
    names = sorted(name for name, _ in found if not name.startswith("_"))
    return Program(
        prog="bootseed",
        description="First-boot customization agent (cloud-init compatible user-data).",
        verbs={name.replace("_", "-"): partial(_load, name) for name in names},
        version=__version__,
    )


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    return build_program_parser(program(), only)


def main(argv: list[str] | None = None) -> int:
    return run_program(program(), argv)


if __name__ == "__main__":
    sys.exit(main())
