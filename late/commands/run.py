"""``bootseed run``: apply the seed to the target root, one stage or all of them."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootseed.late import jsonout

NAME = "run"
HELP = "run the late agent's stages (local, network, config, final) on a target root"
STAGE_CHOICES = ("local", "network", "config", "final", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", choices=STAGE_CHOICES, default="all",
                        help="stage to run; earlier stages not yet run this boot run first "
                             "(default: all)")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root every file effect goes to (default: /)")
    parser.add_argument("--seed-dir", type=Path, default=None,
                        help="seed cache to read (default: ROOT/run/bootseed)")
    parser.add_argument("--notify", action="store_true",
                        help="send READY=1 to $NOTIFY_SOCKET once the local stage is done")
    parser.add_argument("--network-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="longest wait for a default route before the network stage "
                             "(default: 30; 0 skips the wait)")
    parser.add_argument("--console", default=None, metavar="PATH",
                        help="where operator messages (host keys, final message) go; "
                             "stderr when it cannot be written (default: /dev/console when "
                             "ROOT is /, else stderr: a test target must not print on the "
                             "host's console)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug log lines on stderr")
    parser.add_argument("--json", action="store_true", help="print the final status as JSON")


def _console_device(requested: str | None, root: Path) -> str:
    if requested is not None:
        return requested
    return "/dev/console" if root.resolve() == Path("/") else "/dev/stderr"


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.runner import Runner, RunOptions, console_writer
    from bootseed.late.stages import ORDER, RunStage

    if not args.root.is_dir():
        raise CliError(f"--root {args.root}: not a directory")
    if args.network_timeout < 0:
        raise CliError("--network-timeout must be >= 0")
    stages = ORDER if args.stage == "all" else (RunStage(args.stage),)
    runner = Runner(RunOptions(
        root=args.root.resolve(), seed_dir=args.seed_dir, stages=stages, notify=args.notify,
        network_timeout=args.network_timeout, verbose=args.verbose,
        console=console_writer(_console_device(args.console, args.root)),
    ))
    try:
        status = runner.run()
    except (OSError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print(jsonout.dumps(runner.redactor.data(status.to_json()), indent=2, sort_keys=True))
    # Failed modules do not fail the run (the status says); a run that could not
    # proceed (unusable seed cache, a runner error) does.
    return 1 if status.errors else 0
