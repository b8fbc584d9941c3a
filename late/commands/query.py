"""``bootseed query``: read instance data (root sees everything, others the redacted view)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bootseed.late import jsonout

NAME = "query"
HELP = "print instance data, or one KEY of it (dotted: v1.instance_id, ds.meta_data.x)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="?", metavar="KEY",
                        help="dotted path; v1 keys also work bare (instance_id)")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root whose /run/bootseed to read (default: /)")
    parser.add_argument("--redacted", action="store_true",
                        help="show the redacted view even to root")


def lookup(data: dict[str, Any], key: str) -> Any:
    """``a.b.0.c``; a bare key missing at the top is looked up under ``v1``."""
    parts = key.split(".")
    if parts[0] not in data and isinstance(data.get("v1"), dict) and parts[0] in data["v1"]:
        parts = ["v1", *parts]
    node: Any = data
    for index, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(".".join(parts[: index + 1]))
    return node


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.instance import read_instance_data
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.target import TargetRoot

    run_dir = TargetRoot(args.root).path(DEFAULT_RUN_DIR)
    try:
        data = read_instance_data(run_dir, sensitive=False if args.redacted else None)
    except FileNotFoundError as exc:
        raise CliError(f"{exc}: bootseed has not run") from exc
    value: Any = data
    if args.key:
        try:
            value = lookup(data, args.key)
        except KeyError as exc:
            raise CliError(f"no key {exc.args[0]!r} in instance data") from exc
    if isinstance(value, str):
        print(value)
    else:
        print(jsonout.dumps(value, indent=2, sort_keys=True))
    return 0
