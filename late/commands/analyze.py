"""``bootseed analyze``: where the boot's time went, slowest first."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bootseed.late import jsonout

NAME = "analyze"
HELP = "per-stage and per-module wall time of the last run, slowest first"


ACTIONS = ("show", "blame", "dump", "boot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS, default="show",
                        help="show and blame (the default): the table, slowest first; "
                             "dump: the same as JSON (as --json); boot: when the kernel "
                             "started and systemd started bootseed (running system only)")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root whose /run/bootseed to read (default: /)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")


def timings(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    stages = [
        {"stage": name, "duration": t.get("duration") or 0.0}
        for name, t in (doc.get("stages") or {}).items()
    ]
    modules = [
        {"module": m["name"], "stage": m["stage"], "status": m["status"],
         "duration": m.get("duration") or 0.0}
        for m in doc.get("modules") or []
    ]
    stages.sort(key=lambda s: s["duration"], reverse=True)
    modules.sort(key=lambda m: m["duration"], reverse=True)
    return {"stages": stages, "modules": modules}


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.status import read_status
    from bootseed.late.target import TargetRoot

    target = TargetRoot(args.root)
    run_dir = target.path(DEFAULT_RUN_DIR)
    doc = read_status(run_dir)
    if args.action == "boot":
        return _boot(target.is_host, doc)
    if doc is None:
        raise CliError(f"no status in {run_dir}: bootseed has not run")
    table = timings(doc)
    if args.json or args.action == "dump":
        print(jsonout.dumps(table, indent=2))
        return 0
    total = sum(s["duration"] for s in table["stages"])
    print(f"stages (total {total:.3f} s):")
    for s in table["stages"]:
        print(f"  {s['duration']:9.3f} s  {s['stage']}")
    print("modules:")
    for m in table["modules"]:
        print(f"  {m['duration']:9.3f} s  {m['module']:<24} {m['stage']:<8} {m['status']}")
    return 0


def _boot(is_host: bool, doc: dict[str, Any] | None) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.bootrecord import gather

    if not is_host:
        raise CliError("analyze boot reads the running system's kernel and systemd; "
                       "not with --root")
    stages = (doc or {}).get("stages") or {}
    starts = [t.get("start") for t in stages.values() if isinstance(t, dict)]
    started = min((s for s in starts if isinstance(s, int | float)), default=None)
    try:
        found = gather(Path("/proc"), started)
    except (OSError, ValueError) as exc:
        raise CliError(f"analyze boot: {exc}") from exc
    print("\n".join(found.lines()))
    return 0
