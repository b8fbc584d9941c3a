"""``bootseed fallback install|status|refresh|mark-good``: the GRUB fallback kernel.

Exit codes of ``status``: 0 healthy, 1 not installed or broken, 2 this boot
came from the fallback entry.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bootseed.late import jsonout

if TYPE_CHECKING:
    from bootseed.late.fallback.install import Outcome
    from bootseed.late.target import TargetRoot

NAME = "fallback"
HELP = "keep the distribution kernel bootable: GRUB fallback entry and boot counting"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", type=Path, default=Path("/"),
                       help="target root (default: /)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    inst = sub.add_parser("install", help="keep the current kernel in /boot/dist-kernel, add "
                                          "the GRUB entry and the boot counter")
    common(inst)
    inst.add_argument("--tries", type=int, default=None, metavar="N",
                      help="boots of the default entry before the fallback (1-9, default 2)")
    inst.add_argument("--panic", type=int, default=None, metavar="SECONDS",
                      help="panic=N on the kernel command lines (default 10)")
    inst.add_argument("--cmdline", help="kernel command line of the fallback entry (default: "
                                        "root=/ro/console= of this boot, or root= from fstab)")
    inst.add_argument("--title", help="menu title of the fallback entry")
    inst.add_argument("--mode", choices=["counter", "variable"],
                      help="override the detection of whether GRUB can write grubenv")
    inst.add_argument("--kernel", help="kernel to keep (default: what /vmlinuz points at)")
    inst.add_argument("--initrd", help="initramfs to keep (with --kernel)")
    inst.add_argument("--force", action="store_true",
                      help="replace an existing /boot/dist-kernel")
    inst.add_argument("--no-update-grub", action="store_true",
                      help="do not run update-grub on grub-mkconfig systems")

    stat = sub.add_parser("status", help="is the fallback in place, and did this boot use it")
    common(stat)
    stat.add_argument("--quick", action="store_true", help="skip the SHA-256 check")

    ref = sub.add_parser("refresh", help="rewrite the GRUB block and scripts, re-arm the "
                                         "counter; never touches /boot/dist-kernel")
    common(ref)
    ref.add_argument("--hook", metavar="WHAT",
                     help="called from a kernel package hook (no update-grub: its own hook "
                          "runs it)")
    ref.add_argument("--quiet", action="store_true", help="print warnings only")

    mark = sub.add_parser("mark-good", help="run the health checks and reset the boot "
                                            "counter (what the late agent does each boot)")
    common(mark)
    mark.add_argument("--safety-net", action="store_true",
                      help="as bootseed-fallback-mark.service: mark only a boot the late agent "
                           "is not part of, or whose final stage ran without marking it")


def _proc_for(root: Path) -> Path:
    """The target's /proc: the host's, or whatever is mounted (or planted) in the target."""
    from bootseed.late.target import TargetRoot

    return TargetRoot(root).path("/proc")


def _print_outcome(outcome: Outcome, args: argparse.Namespace, quiet: bool = False) -> None:
    if args.json:
        print(jsonout.dumps(outcome.to_json(), indent=2))
        return
    if not quiet:
        for line in outcome.done:
            print(line)
    for line in outcome.warnings:
        print(f"warning: {line}")


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.fallback import install as inst
    from bootseed.late.fallback.config import Mode
    from bootseed.late.target import TargetRoot

    target = TargetRoot(args.root)
    if not target.root.is_dir():
        raise CliError(f"--root {args.root}: not a directory")
    try:
        if args.action == "install":
            opts = inst.InstallOptions(cmdline=args.cmdline, kernel=args.kernel,
                                       initrd=args.initrd, force=args.force,
                                       run_update_grub=not args.no_update_grub)
            if args.tries is not None:
                opts.tries = args.tries
            if args.panic is not None:
                opts.panic = args.panic
            if args.title:
                opts.title = args.title
            if args.mode:
                opts.mode = Mode(args.mode)
            if bool(args.kernel) != bool(args.initrd):
                raise CliError("--kernel and --initrd go together")
            _print_outcome(inst.install(target, opts), args)
            return 0
        if args.action == "refresh":
            outcome = inst.refresh(target, run_update_grub=args.hook is None)
            _print_outcome(outcome, args, quiet=args.quiet)
            return 0
        if args.action == "mark-good":
            return _mark_good(target, args)
        return _status(target, args)
    except inst.FallbackError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # config and grubenv errors name their file
        raise CliError(str(exc)) from None


def _mark_good(target: TargetRoot, args: argparse.Namespace) -> int:
    from bootseed.late.fallback.health import mark_boot, safety_net_skip, write_record

    skip = safety_net_skip(target) if args.safety_net else None
    if skip:
        print(f"not marked: {skip}")
        return 0
    record = mark_boot(target, _proc_for(args.root))
    write_record(target.path("/run/bootseed"), record)
    if args.json:
        print(jsonout.dumps(record.to_json(), indent=2))
    else:
        print(record.note)
        for check in record.checks:
            print(f"check {check.name}: {'ok' if check.ok else 'FAILED'} ({check.detail})")
    return 1 if record.failed_checks or not record.installed else 0


def _status(target: TargetRoot, args: argparse.Namespace) -> int:
    from bootseed.late.fallback.report import fallback_status

    status = fallback_status(target, _proc_for(args.root), verify_hash=not args.quick)
    print(jsonout.dumps(status.to_json(), indent=2) if args.json else status.text())
    return status.exit_code
