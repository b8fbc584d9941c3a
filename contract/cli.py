"""One command-line pattern for ``bootseed``, ``bootseed-image`` and ``python3 -m bootseed.early``.

A program is a table of verbs. A :class:`Verb` adds its arguments to its own
subparser and runs with the parsed arguments, returning the exit status. A
failure the user can act on is raised as :class:`CliError`: :func:`run_program`
prints it as one line, ``PROG VERB: reason``, on stderr and exits with the
error's status. ``--help`` comes from argparse for the program and every verb.

Verbs are loaded lazily, so that starting one never pays for importing
another's module (the late agent at boot, the early stage in the initramfs).
Standard library only: the early stage stands on this module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import ModuleType

EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Verb:
    """One subcommand: ``add_arguments(parser)`` and ``run(args) -> exit status``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None

    @classmethod
    def from_module(cls, module: ModuleType) -> Verb:
        """A verb module defines ``NAME``, ``HELP``, ``add_arguments`` and ``run``
        (optionally ``DESCRIPTION`` for ``--help`` when it says more than ``HELP``)."""
        return cls(name=module.NAME, help=module.HELP, add_arguments=module.add_arguments,
                   run=module.run, description=getattr(module, "DESCRIPTION", None))


@dataclass(frozen=True)
class Program:
    """A command with verbs; ``verbs`` maps each verb's name to what loads it."""

    prog: str
    description: str
    verbs: Mapping[str, Callable[[], Verb]]
    version: str | None = None


def loaded(*verbs: Verb) -> dict[str, Callable[[], Verb]]:
    """A verb table for verbs that cost nothing to import."""
    return {verb.name: partial(_same, verb) for verb in verbs}


def _same(verb: Verb) -> Verb:
    return verb


def build_parser(program: Program, only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` the parser with just that verb loaded."""
    parser = argparse.ArgumentParser(prog=program.prog, description=program.description)
    if program.version is not None:
        parser.add_argument("--version", action="version",
                            version=f"{program.prog} {program.version}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name, load in program.verbs.items():
        if only is not None and name != only:
            continue
        verb = load()
        verb_parser = sub.add_parser(verb.name, help=verb.help,
                                     description=verb.description or verb.help)
        verb.add_arguments(verb_parser)
        verb_parser.set_defaults(_verb=verb, _prog=verb_parser.prog)
    return parser


def run_program(program: Program, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the verb, return its exit status."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = args_in[0] if args_in else None
    parser = build_parser(program, only=first if first in program.verbs else None)
    args = parser.parse_args(args_in)
    verb: Verb = args._verb
    try:
        return int(verb.run(args))
    except CliError as exc:
        print(f"{args._prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{args._prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
