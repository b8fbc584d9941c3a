"""``bootseed volume attach DEVICE``: a volume attached while the system runs gets the
boot-time treatment (``bootseed.late.hotattach``); run by ``bootseed-volume@.service``.

Exit status 0 when the volume was handled or rightly left alone (see the printed line),
1 when something it asked for failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "volume"
HELP = "act on a hot-attached volume: its bootseed-volume.yaml and the mounts naming it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="volume_command", required=True, metavar="COMMAND")
    attach = sub.add_parser("attach", help="treat DEVICE as the boot treats an attached "
                                           "volume (run by udev via bootseed-volume@.service)")
    attach.add_argument("device", metavar="DEVICE",
                        help="block device node, e.g. /dev/vdb or /dev/block/254:16")
    attach.add_argument("--root", type=Path, default=Path("/"),
                        help="target root (default: /)")
    attach.add_argument("--cmdline", type=Path, default=Path("/proc/cmdline"),
                        help="kernel command line to honour (default: /proc/cmdline)")


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from bootseed.contract.cli import CliError
    from bootseed.late import hotattach
    from bootseed.late.target import TargetRoot

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="bootseed-volume: %(message)s")
    log = logging.getLogger("bootseed.volume")
    target = TargetRoot(args.root)
    try:
        cmdline = args.cmdline.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CliError(f"cannot read {args.cmdline}: {exc.strerror}") from exc
    try:
        with hotattach.attach_lock(str(hotattach.lock_path(target))):
            report = hotattach.attach(args.device, target, cmdline, log)
            hotattach.record(target, report)
    except (OSError, TimeoutError) as exc:
        raise CliError(f"{args.device}: {exc}") from exc
    subject = report.volume or report.device
    if report.skipped:
        print(f"{subject}: nothing done: {report.skipped}")
    for done in report.done:
        print(f"{subject}: {done}")
    for problem in report.problems:
        print(f"{subject}: {problem.level}: {problem}")
    return 1 if report.failed else 0
