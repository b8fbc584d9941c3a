"""``python3 -m bootseed.early VERB``: entry point of the initramfs stage.

``premount`` is what the initramfs-tools script and the dracut hook run. It always
exits 0 — a failure is recorded in seed.json and on the console, never allowed to stop
the boot — except for a usage error, which exits 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m bootseed.early",
        description="bootseed early stage (runs inside the initramfs, standard library only).")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    pre = sub.add_parser(
        "premount", help="find the seed (bringing the network up only when needed) and cache "
        "it in /run/bootseed", description="Find the seed before the root is mounted and write "
        "the seed cache. Exits 0 even when it fails: the boot must go on.")
    pre.add_argument("--cmdline", help="kernel command line to use instead of /proc/cmdline")
    pre.add_argument("--out", default="/run/bootseed", help="seed cache directory")
    pre.add_argument("--root", default="/", help="root for seed directories and /sys (tests)")
    pre.add_argument("--sys-class-net", default="/sys/class/net", help=argparse.SUPPRESS)
    pre.add_argument("--dmi-dir", default=None, help=argparse.SUPPRESS)
    pre.add_argument("--no-disc-scan", action="store_true", help=argparse.SUPPRESS)
    pre.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)
    pre.add_argument("--ec2-endpoint", action="append", default=None, help=argparse.SUPPRESS)
    pre.add_argument("--resolv-conf", default=None,
                     help="write DHCP's DNS servers here (the initramfs script passes "
                     "/etc/resolv.conf; never the host's file)")
    pre.add_argument("--net-backend", default="auto",
                     choices=("auto", "pyroute2", "klibc-ipconfig"))
    pre.add_argument("--carrier-timeout", type=float, default=5.0, metavar="S")
    pre.add_argument("--dhcp-timeout", type=float, default=15.0, metavar="S")
    pre.add_argument("--kmsg", action="store_true", help="also log the summary to /dev/kmsg")
    pre.add_argument("--json", action="store_true", help="print the written seed.json")
    sub.add_parser("rootswitch", add_help=False, help="rescue boot, root take-over and "
                   "overlay root after the root is mounted (see rootswitch --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["rootswitch"]:
        from bootseed.early.rootswitch import main as rootswitch_main

        return rootswitch_main((sys.argv[1:] if argv is None else argv)[1:])
    args = build_parser().parse_args(argv)
    from bootseed.early.premount import PremountOptions, run

    for name in ("carrier_timeout", "dhcp_timeout"):
        if not 0 < getattr(args, name) <= 600:
            print(f"--{name.replace('_', '-')}: needs seconds above 0 and at most 600",
                  file=sys.stderr)
            return 2
    seed = run(PremountOptions(
        cmdline=args.cmdline, out_dir=args.out, root=args.root, sys_class_net=args.sys_class_net,
        resolv_conf=args.resolv_conf, net_backend=args.net_backend,
        carrier_timeout=args.carrier_timeout, dhcp_timeout=args.dhcp_timeout, kmsg=args.kmsg,
        dmi_dir=args.dmi_dir, scan_discs=not args.no_disc_scan, proc=args.proc,
        ec2_endpoints=args.ec2_endpoint))
    if args.json:
        print(json.dumps(seed.manifest() if seed is not None else {"disabled": True},
                         indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
