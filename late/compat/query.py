"""``cloud-init query``: instance data, as cloud-init 22.4 answers it.

Root reads ``instance-data-sensitive.json``, anyone else the redacted
``instance-data.json`` (both in ``/run/cloud-init``). ``--format`` renders a
Jinja template over the data, in a sandbox; the ``v1`` keys are also there at
the top level (``{{ instance_id }}``), as in cloud-init.
"""

from __future__ import annotations

import argparse
from typing import Any

from bootseed.late.compat.common import add_root

NAME = "query"
HELP = "print instance data: all of it, one KEY, its keys, or a template over it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bootseed.late.commands.query import add_query_options

    parser.add_argument("varname", nargs="?", metavar="KEY",
                        help="dotted path (v1.instance_id, ds.meta_data.x); v1 keys also bare")
    add_query_options(parser)
    add_root(parser)


def _with_v1_aliases(data: dict[str, Any]) -> dict[str, Any]:
    v1 = data.get("v1")
    if not isinstance(v1, dict):
        return data
    return {**{k: v for k, v in v1.items() if k not in data}, **data}


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.cloudinit_files import CLOUD_RUN_DIR
    from bootseed.late.commands.query import answer
    from bootseed.late.instance import read_instance_data
    from bootseed.late.target import TargetRoot

    if not (args.all or args.list_keys or args.format or args.varname):
        raise CliError("expected one of --all, --format, --list-keys or a KEY")
    try:
        data = _with_v1_aliases(read_instance_data(TargetRoot(args.root).path(CLOUD_RUN_DIR)))
    except FileNotFoundError as exc:
        raise CliError(f"{exc}: the agent has not run") from exc
    print(answer(data, args.varname, args.list_keys, args.format,
                 missing="undefined key {key!r} in instance data", indent=1))
    return 0
