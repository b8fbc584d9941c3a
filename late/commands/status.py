"""``bootseed status``: where the run is, and whether it went well.

Exit codes: 0 done (or disabled), 1 error (a module failed or the run could
not proceed), 2 still running, or done with problems (degraded).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bootseed.late import jsonout

NAME = "status"
HELP = "show the late agent's status (exit 0 done, 1 error, 2 running or degraded)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true",
                        help="block until the final stage wrote its result")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                        help="longest --wait (default: 300)")
    parser.add_argument("--long", action="store_true", help="stages, failures and problems")
    parser.add_argument("--format", choices=("json", "yaml", "tabular"), default="tabular",
                        help="the whole status document as JSON or YAML, or the lines "
                             "(default: tabular)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root whose /run/bootseed to read (default: /)")


def _wait(run_dir: Path, timeout: float) -> dict[str, Any] | None:
    from bootseed.late.status import FINAL_STATES, read_status

    deadline = time.monotonic() + timeout
    while True:
        doc = read_status(run_dir)
        if doc is not None and doc.get("state") in FINAL_STATES:
            return doc
        if time.monotonic() >= deadline:
            return doc
        time.sleep(0.25)


def _long(doc: dict[str, Any]) -> str:
    lines = [f"status: {doc.get('state')}" + (" (degraded)" if doc.get("degraded") else "")]
    for key in ("stage", "instance_id", "previous_instance_id", "source", "no_seed",
                "new_instance", "boot_finished_uptime"):
        if doc.get(key) is not None:
            lines.append(f"{key.replace('_', ' ')}: {doc[key]}")
    for name, timing in (doc.get("stages") or {}).items():
        duration = timing.get("duration")
        shown = f"{duration:.3f} s" if isinstance(duration, int | float) else "running"
        lines.append(f"stage {name}: {shown}")
    for module in doc.get("modules") or []:
        if module.get("status") == "failed":
            lines.append(f"failed: {module['name']} ({module['stage']}): {module.get('error')}")
    for problem in doc.get("problems") or []:
        lines.append(f"{problem.get('level', 'warning')}: {problem['where']}: "
                     f"{problem['message']}")
    for error in doc.get("errors") or []:
        lines.append(f"error: {error}")
    entry = doc.get("boot_entry")
    if entry:
        lines.append("boot entry: " + (f"FALLBACK ({entry.get('reason')}): "
                                       f"{entry.get('explanation')}"
                                       if entry.get("from_fallback") else "default"))
    return "\n".join(lines)


def _boot_entry(root: Path) -> dict[str, Any] | None:
    """Which GRUB entry this boot came from (bootseed fallback), when that is installed."""
    from bootseed.late.fallback.report import boot_summary
    from bootseed.late.target import TargetRoot

    target = TargetRoot(root)
    summary = boot_summary(target, target.path("/proc"))
    return summary if summary.get("installed") or summary.get("from_fallback") else None


def run(args: argparse.Namespace) -> int:
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.status import EXIT_RUNNING_OR_DEGRADED, exit_code, read_status
    from bootseed.late.target import TargetRoot

    run_dir = TargetRoot(args.root).path(DEFAULT_RUN_DIR)
    doc = _wait(run_dir, args.timeout) if args.wait else read_status(run_dir)
    if doc is None:
        doc = {"state": "not started", "stage": None}
        code = EXIT_RUNNING_OR_DEGRADED
    else:
        code = exit_code(doc)
    entry = _boot_entry(args.root)
    if entry is not None:
        doc = {**doc, "boot_entry": entry}
    if args.json or args.format == "json":
        print(jsonout.dumps(doc, indent=2, sort_keys=True))
    elif args.format == "yaml":
        import yaml

        # Through JSON first: the document is the JSON one, whatever types it holds.
        print(yaml.safe_dump(json.loads(jsonout.dumps(doc)), default_flow_style=False,
                             sort_keys=True), end="")
    elif args.long:
        print(_long(doc))
    else:
        print(f"status: {doc.get('state')}" + (" (degraded)" if doc.get("degraded") else ""))
        if entry is not None and entry.get("from_fallback"):
            print(f"boot: FALLBACK entry ({entry.get('reason')}): {entry.get('explanation')}")
    return code
