"""The ``cloud-init`` console script (package ``bootseed-cloud-init-compat``).

Built on bootseed's one CLI pattern (``bootseed.contract.cli``). A verb
cloud-init has and bootseed does not is answered with one line on stderr and
exit status 1, whether it is listed here or not.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from functools import partial

from bootseed.contract import __version__
from bootseed.contract.cli import Program, Verb, loaded, run_program
from bootseed.late.compat.mapped import VERBS as MAPPED_VERBS

PROG = "cloud-init"
# cloud-init 22.4 verbs bootseed has no equivalent for, with what to use instead.
UNSUPPORTED: dict[str, str] = {
    "features": "bootseed has no feature flags",
    "dhclient-hook": "bootseed does not hook into dhclient",
    "hotplug-hook": "bootseed does not handle hotplug events",
}
EXIT_UNSUPPORTED = 1


def _load(module: str) -> Verb:
    return Verb.from_module(importlib.import_module(f"bootseed.late.compat.{module}"))


def _unsupported_verb(name: str, why: str) -> Verb:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """No arguments: ``main`` answers the verb before parsing."""

    def run(_args: argparse.Namespace) -> int:
        return unsupported(name, why)

    return Verb(name, f"not supported by bootseed ({why})", add_arguments, run)


def unsupported(verb: str, why: str | None = None) -> int:
    print(f"{PROG} {verb}: not supported by bootseed" + (f" ({why})" if why else ""),
          file=sys.stderr)
    return EXIT_UNSUPPORTED


def program() -> Program:
    verbs: dict[str, Callable[[], Verb]] = {
        "status": partial(_load, "status"),
        "query": partial(_load, "query"),
        "collect-logs": partial(_load, "collect_logs"),
        "devel": partial(_load, "devel"),
    }
    verbs.update(loaded(*MAPPED_VERBS))
    verbs.update(loaded(*(_unsupported_verb(n, why) for n, why in UNSUPPORTED.items())))
    return Program(prog=PROG, description="cloud-init's command, answered by bootseed.",
                   verbs=verbs, version=__version__)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbs = program().verbs
    first = next((a for a in args if not a.startswith("-")), None)
    # Answered before parsing: whatever options follow, the answer is the same.
    if first in UNSUPPORTED:
        return unsupported(first, UNSUPPORTED[first])
    if first is not None and first not in verbs:
        return unsupported(first)
    return run_program(program(), args)


if __name__ == "__main__":
    sys.exit(main())
