"""``cloud-init query``: instance data, as cloud-init 22.4 answers it.

Root reads ``instance-data-sensitive.json``, anyone else the redacted
``instance-data.json`` (both in ``/run/cloud-init``). ``--format`` renders a
Jinja template over the data, in a sandbox; the ``v1`` keys are also there at
the top level (``{{ instance_id }}``), as in cloud-init.
"""

from __future__ import annotations

import argparse
from typing import Any

from bootseed.late import jsonout
from bootseed.late.compat.common import add_root

NAME = "query"
HELP = "print instance data: all of it, one KEY, its keys, or a template over it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("varname", nargs="?", metavar="KEY",
                        help="dotted path (v1.instance_id, ds.meta_data.x); v1 keys also bare")
    parser.add_argument("--all", "-a", action="store_true", help="all instance data")
    parser.add_argument("--list-keys", "-k", action="store_true",
                        help="the keys at the top, or under KEY")
    parser.add_argument("--format", "-f", metavar="TEMPLATE",
                        help="a Jinja template to render, e.g. '{{ v1.region }}'")
    add_root(parser)


def _with_v1_aliases(data: dict[str, Any]) -> dict[str, Any]:
    v1 = data.get("v1")
    if not isinstance(v1, dict):
        return data
    return {**{k: v for k, v in v1.items() if k not in data}, **data}


def _render(template: str, data: dict[str, Any]) -> str:
    from bootseed.contract.cli import CliError
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        return SandboxedEnvironment().from_string(template).render(**data)
    except TemplateError as exc:
        raise CliError(f"--format: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.cloudinit_files import CLOUD_RUN_DIR
    from bootseed.late.commands.query import lookup
    from bootseed.late.instance import read_instance_data
    from bootseed.late.target import TargetRoot

    if not (args.all or args.list_keys or args.format or args.varname):
        raise CliError("expected one of --all, --format, --list-keys or a KEY")
    try:
        data = _with_v1_aliases(read_instance_data(TargetRoot(args.root).path(CLOUD_RUN_DIR)))
    except FileNotFoundError as exc:
        raise CliError(f"{exc}: the agent has not run") from exc
    if args.format:
        print(_render(args.format, data))
        return 0
    value: Any = data
    if args.varname:
        try:
            value = lookup(data, args.varname)
        except KeyError as exc:
            raise CliError(f"undefined key {exc.args[0]!r} in instance data") from exc
    if args.list_keys:
        if not isinstance(value, dict):
            raise CliError(f"--list-keys: {args.varname} is not a mapping")
        print("\n".join(sorted(value)))
    elif isinstance(value, str):
        print(value)
    else:
        print(jsonout.dumps(value, indent=1, sort_keys=True))
    return 0
