"""What the ``cloud-init`` verbs share: the ``--root`` option and bootseed's CLI."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_root(parser: argparse.ArgumentParser) -> None:
    """A bootseed extension every verb has: act on a target root other than ``/``."""
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root to read or act on (bootseed extension; default: /)")


def bootseed(*argv: str) -> int:
    """Run a ``bootseed`` verb in this process; its exit status."""
    from bootseed.late.cli import main

    return main(list(argv))
