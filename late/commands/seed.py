"""``bootseed seed fetch``: run seed discovery outside the initramfs.

For debugging a seed and for systems where no early stage ran. It runs the
same ``bootseed.early`` code the initramfs does; ``--out`` writes the seed
cache there (``/run/bootseed`` is what the late agent reads).
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

from bootseed.late import jsonout

NAME = "seed"
HELP = "find and fetch the seed (kernel command line, NoCloud, EC2, OVF, config drive)"
EXIT_NO_SEED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    fetch = actions.add_parser(
        "fetch", help="search for the seed and print what was found",
        description="Search for the seed as the early stage would and print the verdict. "
                    f"Exit status 0 when a seed was found, {EXIT_NO_SEED} when there is none.")
    fetch.add_argument("--json", action="store_true",
                       help="print the seed manifest (seed.json form) as JSON")
    fetch.add_argument("--cmdline", metavar="STR",
                       help="kernel command line to use instead of /proc/cmdline")
    fetch.add_argument("--out", metavar="DIR",
                       help="write the seed cache (payloads + seed.json) into DIR")
    fetch.add_argument("--root", default="/", metavar="DIR",
                       help="root holding the seed directories (default: /)")
    fetch.add_argument("--dmi-dir", metavar="DIR",
                       help="DMI directory (default: /sys/class/dmi/id)")
    fetch.add_argument("--ec2-endpoint", action="append", metavar="URL",
                       help="metadata service base URL (repeatable; default: the EC2 addresses)")
    fetch.add_argument("--openstack-endpoint", action="append", metavar="URL",
                       help="OpenStack metadata service base URL (repeatable; default: "
                            "http://169.254.169.254)")
    fetch.add_argument("--timeout", type=float, metavar="SECONDS",
                       help="total time budget (default: bootseed.timeout= or 20)")
    fetch.add_argument("--no-discs", action="store_true",
                       help="do not scan block devices for seed discs")


def redacted(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with ``metadata.sensitive`` values hidden, for printing."""
    doc = copy.deepcopy(manifest)
    sensitive = doc.get("metadata", {}).get("sensitive")
    if isinstance(sensitive, dict):
        doc["metadata"]["sensitive"] = {key: "<redacted>" for key in sensitive}
    return doc


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.contract.seedcache import write_seed_cache
    from bootseed.early.discover import DiscoveryConfig, discover

    if args.timeout is not None and not args.timeout > 0:
        raise CliError(f"--timeout must be above 0, got {args.timeout:g}")
    config = DiscoveryConfig.from_system(root=args.root, cmdline=args.cmdline)
    config.stage = "late"
    config.scan_discs = not args.no_discs
    if args.dmi_dir:
        config.dmi_dir = args.dmi_dir
    if args.ec2_endpoint:
        config.ec2_endpoints = list(args.ec2_endpoint)
    if args.openstack_endpoint:
        config.openstack_endpoints = list(args.openstack_endpoint)
    if args.timeout is not None:
        config.total_budget = args.timeout
    seed = discover(config)
    if args.out:
        try:
            write_seed_cache(seed, args.out)
        except OSError as exc:
            raise CliError(f"cannot write the seed cache to {args.out}: {exc}") from exc
    doc = redacted(seed.manifest())
    if args.json:
        print(jsonout.dumps(doc, indent=2, sort_keys=True))
    else:
        _print_human(doc)
    if not seed.has_seed:
        if not args.json:
            raise CliError("no seed found", exit_code=EXIT_NO_SEED)
        return EXIT_NO_SEED
    return 0


def _print_human(doc: dict[str, Any]) -> None:
    print(f"source:      {doc['source']}")
    if doc["source"] != "none":
        print(f"location:    {doc['location']}")
        print(f"instance-id: {doc['instance_id']}")
        md = doc["metadata"]
        if md.get("local-hostname"):
            print(f"hostname:    {md['local-hostname']}")
        print(f"public keys: {len(md.get('public-keys') or [])}")
        for name, size in doc["payloads"].items():
            print(f"payload:     {name} ({size} bytes) from {doc['found'].get(name, '?')}")
    for step in doc["timings"]:
        print(f"step:        {step['name']}: {step['outcome']} in {step['duration_ms']:.1f} ms")
    for problem in doc["problems"]:
        print(f"problem:     {problem['where']}: {problem['message']}")
