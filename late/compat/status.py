"""``cloud-init status``: cloud-init 22.4's fields and exit codes over bootseed's status.

22.4 exits 0 unless the run failed (1); it has no "degraded" state, so a run
done with problems reports ``done`` here (``bootseed status`` says more).
``--wait`` polls until the run is over, printing a dot per poll, as 22.4 does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bootseed.late import jsonout
from bootseed.late.compat.common import add_root

NAME = "status"
HELP = "report the run's status (exit 0 not failed, 1 error)"
POLL_SECONDS = 0.25
EXIT_OK = 0
EXIT_ERROR = 1
# ``--format json|yaml`` carries the fields again under ``schemas``, by this version.
SCHEMA_VERSION = "1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", "-w", action="store_true",
                        help="block until the run is over (done, error or disabled)")
    parser.add_argument("--long", "-l", action="store_true",
                        help="also the boot status code, last update and detail")
    parser.add_argument("--format", choices=("json", "yaml", "tabular"), default="tabular",
                        help="output format (default: tabular)")
    add_root(parser)


def _boot_status_code(root: Path, doc: dict[str, Any] | None) -> str:
    from bootseed.late.runner import DISABLE_FILE
    from bootseed.late.target import TargetRoot

    if doc is not None and doc.get("state") == "disabled":
        if TargetRoot(root).exists(DISABLE_FILE):
            return "disabled-by-marker-file"
        return "disabled-by-kernel-cmdline"
    return "enabled-by-generator"


def report(root: Path, doc: dict[str, Any] | None) -> dict[str, Any]:
    """The 22.4 ``status --format json`` fields for bootseed's status document."""
    state = "not run" if doc is None else str(doc.get("state"))
    errors: list[str] = []
    last_update = None
    if doc is not None:
        errors += [str(e) for e in doc.get("errors") or []]
        errors += [f"{m.get('name')}: {m.get('error')}" for m in doc.get("modules") or []
                   if m.get("status") == "failed"]
        stamps = [t.get("end") or t.get("start") for t in (doc.get("stages") or {}).values()]
        stamps = [s for s in stamps if isinstance(s, int | float)]
        if isinstance(doc.get("finished"), int | float):
            stamps.append(doc["finished"])
        if stamps:
            last_update = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(max(stamps)))
    source = doc.get("source") if doc else None
    # As cloud-init: the first error when there is one, else what the source is.
    detail = errors[0] if errors else (f"bootseed seed source {source}" if source else "")
    return {
        "status": state,
        "boot_status_code": _boot_status_code(root, doc),
        "datasource": source or "",
        "detail": detail,
        "errors": errors,
        "last_update": last_update or "",
    }


def structured(fields: dict[str, Any]) -> dict[str, Any]:
    """What ``--format json|yaml`` prints: the fields, and again under ``schemas``."""
    return {**fields, "_schema_version": SCHEMA_VERSION, "schemas": {SCHEMA_VERSION: fields}}


def _tabular(fields: dict[str, Any], long: bool) -> str:
    lines = [f"status: {fields['status']}"]
    if long:
        lines += [f"boot_status_code: {fields['boot_status_code']}",
                  f"last_update: {fields['last_update']}",
                  "detail:", str(fields["detail"])]
        lines += [f"error: {error}" for error in fields["errors"]]
    return "\n".join(lines)


def _wait(run_dir: Path) -> dict[str, Any] | None:
    from bootseed.late.status import FINAL_STATES, read_status

    while True:
        doc = read_status(run_dir)
        if doc is not None and doc.get("state") in FINAL_STATES:
            return doc
        sys.stdout.write(".")
        sys.stdout.flush()
        time.sleep(POLL_SECONDS)


def run(args: argparse.Namespace) -> int:
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.status import read_status
    from bootseed.late.target import TargetRoot

    run_dir = TargetRoot(args.root).path(DEFAULT_RUN_DIR)
    if args.wait:
        doc = _wait(run_dir)
        print()
    else:
        doc = read_status(run_dir)
    fields = report(args.root, doc)
    if args.format == "json":
        print(jsonout.dumps(structured(fields), indent=2, sort_keys=True))
    elif args.format == "yaml":
        import yaml

        print(yaml.safe_dump(structured(fields), default_flow_style=False, sort_keys=True),
              end="")
    else:
        print(_tabular(fields, args.long))
    return EXIT_ERROR if fields["status"] == "error" else EXIT_OK
