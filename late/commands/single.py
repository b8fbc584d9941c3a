"""``bootseed single``: run one cloud-config module now, as cloud-init's ``single`` does.

The module runs on the config the last run processed, with its frequency:
the module's own unless ``--frequency`` says otherwise; ``always`` (bootseed's
``per-boot``) runs it even if it ran before, ``instance`` and ``once`` skip it
when its semaphore says it ran. Exit status: 0 ran or skipped, 1 the module
failed, an unknown module, or nothing to run it on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bootseed.late import jsonout

NAME = "single"
HELP = "run one cloud-config module now (exit 0 ran or skipped, 1 failed or unknown)"
FREQUENCIES = ("always", "instance", "once", "per-boot", "per-instance", "per-once")
EXIT_OK = 0
EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", "-n", required=True, metavar="MODULE",
                        help="the module (users_groups, cc_runcmd, write-files ...)")
    parser.add_argument("--frequency", choices=FREQUENCIES, default=None,
                        help="override the module's frequency; 'always' runs it even if it "
                             "ran before")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root to act on (default: /)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug log lines on stderr")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from bootseed.contract.cli import CliError
    from bootseed.contract.problems import problems_to_json
    from bootseed.late.model import Frequency
    from bootseed.late.runner import Runner, RunOptions, console_writer

    if not args.root.is_dir():
        raise CliError(f"--root {args.root}: not a directory")
    frequency = Frequency.parse(args.frequency) if args.frequency else None
    device = "/dev/console" if args.root.resolve() == Path("/") else "/dev/stderr"
    runner = Runner(RunOptions(root=args.root.resolve(), verbose=args.verbose,
                               console=console_writer(device)))
    try:
        outcome = runner.run_one(args.name, frequency)
    except (OSError, RuntimeError) as exc:
        raise CliError(str(exc)) from exc
    if outcome.error is not None:
        raise CliError(f"single {outcome.name}: {outcome.error}", EXIT_FAILED)
    result = outcome.result
    assert result is not None
    if args.json:
        doc = {"module": asdict(result), "problems": problems_to_json(list(outcome.problems))}
        print(jsonout.dumps(runner.redactor.data(doc), indent=2, sort_keys=True))
    else:
        detail = {"ok": f" in {result.duration:.3f} s", "skipped": f": {result.reason}",
                  "failed": f": {result.error}"}.get(result.status, "")
        print(runner.redactor.text(f"{result.name} ({result.frequency}): {result.status}"
                                   f"{detail}"))
        for problem in outcome.problems:
            print(runner.redactor.text(f"{problem.level}: {problem.where}: {problem.message}"))
    return EXIT_FAILED if result.status == "failed" else EXIT_OK
