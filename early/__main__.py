"""``python3 -m bootseed.early VERB``: entry point of the initramfs stage.

``premount`` is what the initramfs-tools script and the dracut hook run. It always
exits 0 — a failure is recorded in seed.json and on the console, never allowed to stop
the boot — except for a usage error, which exits 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import sys

from bootseed.contract import __version__
from bootseed.contract.cli import CliError, Program, Verb, run_program

DESCRIPTION = "bootseed early stage (runs inside the initramfs, standard library only)."
PREMOUNT_HELP = ("find the seed (bringing the network up only when needed) and cache it in "
                 "/run/bootseed")
PREMOUNT_DESCRIPTION = ("Find the seed before the root is mounted and write the seed cache. "
                        "Exits 0 even when it fails: the boot must go on.")


def add_premount_arguments(pre: argparse.ArgumentParser) -> None:
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
    pre.add_argument("--ra-timeout", type=float, default=3.0, metavar="S",
                     help="when DHCPv4 gets no lease, how long to wait for an IPv6 router "
                     "advertisement (an IPv6-only subnet)")
    pre.add_argument("--kmsg", action="store_true", help="also log the summary to /dev/kmsg")
    pre.add_argument("--json", action="store_true", help="print the written seed.json")


def run_premount(args: argparse.Namespace) -> int:
    from bootseed.early.premount import PremountOptions, run

    for name in ("carrier_timeout", "dhcp_timeout", "ra_timeout"):
        if not 0 < getattr(args, name) <= 600:
            raise CliError(f"--{name.replace('_', '-')}: needs seconds above 0 and at most 600",
                           exit_code=2)
    seed = run(PremountOptions(
        cmdline=args.cmdline, out_dir=args.out, root=args.root, sys_class_net=args.sys_class_net,
        resolv_conf=args.resolv_conf, net_backend=args.net_backend,
        carrier_timeout=args.carrier_timeout, dhcp_timeout=args.dhcp_timeout,
        ra_timeout=args.ra_timeout, kmsg=args.kmsg,
        dmi_dir=args.dmi_dir, scan_discs=not args.no_disc_scan, proc=args.proc,
        ec2_endpoints=args.ec2_endpoint))
    if args.json:
        print(json.dumps(seed.manifest() if seed is not None else {"disabled": True},
                         indent=2, sort_keys=True, default=str))
    return 0


def _premount() -> Verb:
    return Verb(name="premount", help=PREMOUNT_HELP, description=PREMOUNT_DESCRIPTION,
                add_arguments=add_premount_arguments, run=run_premount)


def _rootswitch() -> Verb:
    # Imported only for this verb: premount at boot does not pay for it.
    from bootseed.early import rootswitch

    return rootswitch.VERB


def _sshd() -> Verb:
    # Imported only for this verb: only a boot that needs the SSH server pays for it.
    from bootseed.early import sshd

    return sshd.VERB


PROGRAM = Program(prog="python3 -m bootseed.early", description=DESCRIPTION,
                  verbs={"premount": _premount, "rootswitch": _rootswitch, "sshd": _sshd},
                  version=__version__)


def main(argv: list[str] | None = None) -> int:
    return run_program(PROGRAM, argv)


if __name__ == "__main__":
    sys.exit(main())
