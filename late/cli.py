"""The ``bootseed`` console script.

Verbs live in ``bootseed.late.commands.<verb>``; only the requested verb's
module is imported, so ``bootseed run`` at boot does not pay for the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from bootseed.late import __version__
from bootseed.late import commands as commands_pkg
from bootseed.late.pkgscan import iter_modules


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _verb_module_names() -> list[str]:
    found = iter_modules(commands_pkg.__path__)
    return sorted(name for name, _ in found if not name.startswith("_"))


def _load(verb: str) -> ModuleType:
    return importlib.import_module(f"{commands_pkg.__name__}.{verb}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bootseed",
        description="First-boot customization agent (cloud-init compatible user-data).",
    )
    parser.add_argument("--version", action="version", version=f"bootseed {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in _verb_module_names():
        if only is not None and name.replace("_", "-") != only:
            continue
        module = _load(name)
        verb_parser = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.register(verb_parser)
        verb_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    first = args_in[0] if args_in else None
    known = {name.replace("_", "-") for name in _verb_module_names()}
    parser = build_parser(only=first if first in known else None)
    args = parser.parse_args(args_in)
    try:
        return int(args._run(args))
    except CommandError as exc:
        print(f"bootseed {args.verb}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"bootseed {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the importable module, not this __main__ copy, so that the
    # CommandError the verbs raise is the class main() catches.
    from bootseed.late.cli import main as _main

    sys.exit(_main())
