"""``bootseed query``: read instance data (root sees everything, others the redacted view).

All of it (no KEY, or ``--all``), one dotted KEY, the keys of a mapping
(``--list-keys``) or a Jinja template rendered over it in Jinja's sandbox
(``--format '{{ v1.region }}'``). ``cloud-init query`` shares these answers.
"""

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
    add_query_options(parser)


def add_query_options(parser: argparse.ArgumentParser) -> None:
    """The options ``bootseed query`` and ``cloud-init query`` share."""
    parser.add_argument("--all", "-a", action="store_true",
                        help="all instance data (the same as no KEY)")
    parser.add_argument("--list-keys", "-k", action="store_true",
                        help="the keys at the top, or under KEY")
    parser.add_argument("--format", "-f", metavar="TEMPLATE",
                        help="a Jinja template to render, e.g. '{{ v1.region }}'")


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


def render(template: str, data: dict[str, Any]) -> str:
    """``--format``: the template over the data, in Jinja's sandbox."""
    from bootseed.contract.cli import CliError
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        return SandboxedEnvironment().from_string(template).render(**data)
    except TemplateError as exc:
        raise CliError(f"--format: {exc}") from exc


def answer(data: dict[str, Any], key: str | None, list_keys: bool, template: str | None,
           missing: str = "no key {key!r} in instance data", indent: int = 2) -> str:
    """What ``query`` prints for these options."""
    from bootseed.contract.cli import CliError

    if template:
        return render(template, data)
    value: Any = data
    if key:
        try:
            value = lookup(data, key)
        except KeyError as exc:
            raise CliError(missing.format(key=exc.args[0])) from exc
    if list_keys:
        if not isinstance(value, dict):
            raise CliError(f"--list-keys: {key} is not a mapping")
        return "\n".join(sorted(value))
    if isinstance(value, str):
        return value
    return jsonout.dumps(value, indent=indent, sort_keys=True)


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
    print(answer(data, args.key, args.list_keys, args.format))
    return 0
