"""``cloud-init collect-logs``: ``bootseed collect-logs`` with cloud-init's default name."""

from __future__ import annotations

import argparse

from bootseed.late.commands import collect_logs

NAME = collect_logs.NAME
HELP = collect_logs.HELP
DEFAULT_TARFILE = "cloud-init.tar.gz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    collect_logs.add_arguments(parser, default=DEFAULT_TARFILE)


def run(args: argparse.Namespace) -> int:
    return collect_logs.run(args)
