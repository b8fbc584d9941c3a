"""``cloud-init`` verbs that are a bootseed verb under another name.

Each translates its arguments and runs the bootseed verb in this process, so
output and exit status are bootseed's own.
"""

from __future__ import annotations

import argparse

from bootseed.contract.cli import Verb
from bootseed.late.compat.common import add_root, bootseed

# cloud-init's ``modules --mode`` and ``init [--local]`` by bootseed's run stages.
MODE_STAGES = {"init": "network", "config": "config", "final": "final"}


def _clean_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", "-l", action="store_true", help="also remove the logs")
    parser.add_argument("--seed", "-s", action="store_true",
                        help="also remove the seed cache (the seed is found again next boot)")
    parser.add_argument("--machine-id", action="store_true",
                        help="set /etc/machine-id to 'uninitialized' (a new one next boot)")
    parser.add_argument("--reboot", "-r", action="store_true",
                        help="reboot the running system afterwards")
    add_root(parser)


def _clean(args: argparse.Namespace) -> int:
    flags = {"--logs": args.logs, "--seed": args.seed, "--machine-id": args.machine_id,
             "--reboot": args.reboot}
    return bootseed("clean", "--root", str(args.root), *(f for f, on in flags.items() if on))


def _analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show", "blame", "dump", "boot"),
                        help="show and blame: the time table, slowest first; dump: as JSON; "
                             "boot: kernel and agent start times")
    add_root(parser)


def _analyze(args: argparse.Namespace) -> int:
    return bootseed("analyze", args.action, "--root", str(args.root))


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config-file", "-c", metavar="FILE", help="a cloud-config YAML file")
    what.add_argument("--system", action="store_true", help="this system's user-data")
    parser.add_argument("--annotate", action="store_true",
                        help="print the config file with each problem marked on its line")
    add_root(parser)


def _schema(args: argparse.Namespace) -> int:
    annotate = ["--annotate"] if args.annotate else []
    if args.config_file is not None:
        return bootseed("schema", "--config-file", args.config_file, *annotate)
    return bootseed("schema", "--system", "--root", str(args.root), *annotate)


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", "-l", action="store_true",
                        help="the local stage (bootseed run --stage local)")
    add_root(parser)


def _init(args: argparse.Namespace) -> int:
    stage = "local" if args.local else "network"
    return bootseed("run", "--stage", stage, "--root", str(args.root))


def _modules_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", "-m", choices=tuple(MODE_STAGES), default="config",
                        help="init, config or final (default: config)")
    add_root(parser)


def _modules(args: argparse.Namespace) -> int:
    return bootseed("run", "--stage", MODE_STAGES[args.mode], "--root", str(args.root))


def _single_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", "-n", required=True, metavar="MODULE",
                        help="the module to run (cc_ prefix, hyphens and .py are accepted)")
    parser.add_argument("--frequency", choices=("always", "instance", "once"), default=None,
                        help="override the module's frequency; 'always' runs it even if it "
                             "ran before")
    add_root(parser)


def _single(args: argparse.Namespace) -> int:
    extra = ["--frequency", args.frequency] if args.frequency else []
    return bootseed("single", "--name", args.name, "--root", str(args.root), *extra)


VERBS = (
    Verb("clean", "remove the agent's state (bootseed clean)", _clean_arguments, _clean),
    Verb("analyze", "where the boot's time went (bootseed analyze)", _analyze_arguments,
         _analyze),
    Verb("schema", "validate cloud-config (bootseed schema)", _schema_arguments, _schema),
    Verb("init", "run the local or network stage (bootseed run --stage)", _init_arguments,
         _init),
    Verb("modules", "run a stage's modules (bootseed run --stage)", _modules_arguments,
         _modules),
    Verb("single", "run one module now (bootseed single)", _single_arguments, _single),
)
