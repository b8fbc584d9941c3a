"""``bootseed userdata render``: show what the engine makes of a user-data file.

Prints the parts (type, file name, launch index, where it came from, size,
sha256), every part met with what became of it (used, unpacked, skipped,
ignored or failed: ``all_parts`` in the JSON), the merged cloud-config and
every problem with its location. Exit status: 0 without problems, 1 with
problems, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bootseed.late import jsonout

NAME = "userdata"
HELP = "unpack and merge user-data the way the late agent will (cloud-init compatible)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    render = actions.add_parser(
        "render",
        help="print the parts, merged cloud-config and problems of a user-data file",
        description="Unpack FILE (MIME, gzip, #include, archives, jinja templates ...), merge "
        "its cloud-config parts and print the result. Exit status 0 when there are no "
        "problems, 1 when there are, 2 for usage errors.",
    )
    render.add_argument("file", metavar="FILE", help="user-data file ('-' reads stdin)")
    render.add_argument(
        "--vendor-data", metavar="FILE", help="vendor-data file, merged under the user-data"
    )
    render.add_argument(
        "--launch-index",
        type=int,
        metavar="N",
        help="keep only parts for this launch index (default: keep all)",
    )
    render.add_argument(
        "--instance-data",
        metavar="FILE",
        help="instance-data.json for jinja templates (v1.instance_id, ds.meta_data, ...)",
    )
    render.add_argument(
        "--max-bytes",
        type=int,
        metavar="N",
        help="cap on bytes created by decompression, includes and templates (default 16 MiB)",
    )
    render.add_argument(
        "--include-timeout",
        type=float,
        metavar="SECONDS",
        help="time limit of one #include download attempt (default 10)",
    )
    render.add_argument(
        "--include-cache",
        metavar="DIR",
        help="directory for #include-once bodies (default: no cache)",
    )
    render.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bootseed.contract.cli import CliError
    from bootseed.late.userdata.engine import overlay_results, process
    from bootseed.late.userdata.types import Limits

    limits = Limits()
    if args.max_bytes is not None:
        if args.max_bytes < 0:
            raise CliError(f"--max-bytes must not be negative, got {args.max_bytes}", 2)
        limits = replace(limits, max_total_bytes=args.max_bytes)
    if args.include_timeout is not None:
        if not args.include_timeout > 0:
            raise CliError(
                f"--include-timeout must be above 0, got {args.include_timeout:g}", 2
            )
        limits = replace(limits, include_timeout=args.include_timeout)
    instance_data = _instance_data(args.instance_data)
    cache = Path(args.include_cache) if args.include_cache else None
    common: dict[str, Any] = {
        "launch_index": args.launch_index,
        "instance_data": instance_data,
        "limits": limits,
        "include_cache_dir": cache,
    }
    user_raw = _read(args.file, "FILE")
    vendor_raw = _read(args.vendor_data, "--vendor-data") if args.vendor_data else None
    result = process(user_raw, origin="user-data", **common)
    if vendor_raw is not None:
        vendor = process(vendor_raw, origin="vendor-data", **common)
        result = overlay_results(vendor, result)
    if args.json:
        jsonout.dump(result.to_json(), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        _print_human(result.to_json())
    return 1 if result.problems else 0


def _read(name: str, label: str) -> bytes:
    from bootseed.contract.cli import CliError

    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {label} {name}: {exc.strerror or exc}", 2) from None


def _instance_data(name: str | None) -> dict[str, Any] | None:
    from bootseed.contract.cli import CliError

    if name is None:
        return None
    raw = _read(name, "--instance-data")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"--instance-data {name} is not valid JSON: {exc}", 2) from None
    if not isinstance(data, dict):
        raise CliError(f"--instance-data {name} must hold a JSON object", 2)
    return data


def _print_human(doc: dict[str, Any]) -> None:
    import yaml

    out = sys.stdout
    parts = doc["parts"]
    out.write(f"parts ({len(parts)}):\n")
    for part in parts:
        index = "" if part["launch_index"] is None else f" launch-index={part['launch_index']}"
        out.write(
            f"  {part['index']:>3}  {part['content_type']:<32} {part['filename']}"
            f"  {part['size']} bytes  sha256={part['sha256'][:16]}{index}\n"
            f"       from {part['source']}\n"
        )
    records = doc.get("all_parts") or []
    out.write(f"every part met ({len(records)}):\n")
    for record in records:
        kind = record["content_type"] or "?"
        reason = f": {record['reason']}" if record["reason"] else ""
        out.write(f"  {record['status']:<9} {kind:<32} {record['where']}{reason}\n")
    out.write("cloud-config:\n")
    if doc["cloud_config"]:
        text = yaml.safe_dump(doc["cloud_config"], sort_keys=False, default_flow_style=False)
        out.write("".join(f"  {line}\n" for line in text.splitlines()))
    else:
        out.write("  (empty)\n")
    for title, key in (("problems", "problems"), ("notes", "notes")):
        items = doc[key]
        if items or key == "problems":
            out.write(f"{title} ({len(items)}):\n")
        for item in items:
            out.write(f"  {item['where']}: {item['message']}\n")
