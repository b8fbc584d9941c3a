"""``bootseed clean``: forget the instance so the next run behaves like a first boot."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bootseed.late.target import TargetRoot

NAME = "clean"
HELP = "remove bootseed state (and optionally logs and the seed cache) to simulate a new instance"
MACHINE_ID = "/etc/machine-id"
# systemd makes a new machine-id on the next boot when it finds this in the file.
MACHINE_ID_UNSET = "uninitialized\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root to clean (default: /)")
    parser.add_argument("--logs", action="store_true",
                        help="also remove /var/log/bootseed.log, /var/log/user_data.log, "
                        "its old-name link user-data.log and cloud-init's name for it, "
                        "cloud-init-output.log")
    parser.add_argument("--seed", action="store_true",
                        help="also remove the seed cache in /run/bootseed (rediscover next run)")
    parser.add_argument("--machine-id", action="store_true",
                        help=f"set {MACHINE_ID} to 'uninitialized' (a new one next boot)")
    parser.add_argument("--reboot", action="store_true",
                        help="reboot the running system afterwards (not with --root)")


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.cloudinit_files import CLOUD_RUN_DIR, CLOUD_STATE_DIR, OUTPUT_LOG_LINK
    from bootseed.late.logsetup import LOG_FILE, USER_OUTPUT_LINK, USER_OUTPUT_LOG
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.state import STATE_DIR
    from bootseed.late.target import TargetRoot

    target = TargetRoot(args.root)
    if args.reboot and not target.is_host:
        raise CliError("--reboot only applies to the running system, not --root")
    removed: list[str] = []
    run_dir = target.real_path(DEFAULT_RUN_DIR)
    targets = [target.real_path(STATE_DIR)]
    if args.seed:
        targets.append(run_dir)
    else:
        # The agent's own results go; the seed as the early stage left it stays.
        targets += [run_dir / name for name in ("status.json", "result.json",
                                                "instance-data.json",
                                                "instance-data-sensitive.json")]
    # cloud-init's view of the run (bootseed.late.cloudinit_files); its seed directory
    # (/var/lib/cloud/seed) is a seed source, not the agent's state, and stays.
    # The last component is not followed: the instance link itself goes.
    cloud_state = target.real_path(CLOUD_STATE_DIR)
    targets += [cloud_state / name for name in ("instance", "instances", "data")]
    targets += [target.real_path(CLOUD_RUN_DIR)]
    if args.logs:
        targets += [target.real_path(LOG_FILE), target.real_path(USER_OUTPUT_LOG)]
        # The links themselves (old name, cloud-init's name), not what they name: each
        # link's parent is resolved in the target, the last component is not followed.
        for link in (PurePosixPath(USER_OUTPUT_LINK), PurePosixPath(OUTPUT_LOG_LINK)):
            targets.append(target.real_path(str(link.parent)) / link.name)
    for path in targets:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
        except OSError as exc:
            raise CliError(f"cannot remove {path}: {exc.strerror}") from exc
        removed.append(str(path))
    if target.is_host:
        removed += _remove_metadata_fence(target)
    for name in removed:
        print(f"removed {name}")
    if args.machine_id:
        target.write(MACHINE_ID, MACHINE_ID_UNSET, mode=0o444)
        print(f"reset {target.path(MACHINE_ID)}")
    if args.reboot:
        import subprocess

        return subprocess.run(["shutdown", "-r", "now"], check=False).returncode
    return 0


def _remove_metadata_fence(target: TargetRoot) -> list[str]:
    """The metadata lock-down lives in the running kernel, not in a file: undo it there."""
    from bootseed.contract.cli import CliError
    from bootseed.late import metadatafence

    try:
        return metadatafence.remove(target)
    except (metadatafence.FenceError, OSError) as exc:
        raise CliError(f"cannot remove the metadata fence: {exc}") from exc
