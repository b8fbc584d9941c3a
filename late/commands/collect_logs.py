"""``bootseed collect-logs`` (and ``cloud-init collect-logs``): a tarball of what a bug
report needs, secrets removed.

It holds bootseed's logs, status, result, the redacted instance data and the
seed manifest (never the payloads: user-data is where passwords live). Every
text goes through the redactor, primed with the secrets of this instance's
config, so a secret the agent learnt at run time cannot leak through a log.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import time
from pathlib import Path

from bootseed.late.redact import Redactor

NAME = "collect-logs"
HELP = "write a tarball of bootseed's logs and status, secrets redacted"
TOP_DIR = "bootseed-logs"
DEFAULT_TARFILE = "bootseed-logs.tar.gz"


def add_arguments(parser: argparse.ArgumentParser, default: str = DEFAULT_TARFILE) -> None:
    parser.add_argument("--tarfile", "-t", type=Path, default=Path(default),
                        help=f"where to write it (default: {default})")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root whose logs to collect (default: /)")


def collected_files() -> tuple[str, ...]:
    """Paths as the target sees them."""
    from bootseed.contract.seedcache import DEFAULT_SEED_DIR, MANIFEST_NAME
    from bootseed.late.logsetup import LOG_FILE, USER_OUTPUT_LOG
    from bootseed.late.runner import DEFAULT_RUN_DIR

    return (LOG_FILE, USER_OUTPUT_LOG, f"{DEFAULT_RUN_DIR}/status.json",
            f"{DEFAULT_RUN_DIR}/result.json", f"{DEFAULT_RUN_DIR}/instance-data.json",
            f"{DEFAULT_SEED_DIR}/{MANIFEST_NAME}", "/run/cloud-init/status.json")


def _redactor(root: Path) -> Redactor:
    from bootseed.late.instance import read_instance_data
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.target import TargetRoot

    redactor = Redactor()
    try:
        data = read_instance_data(TargetRoot(root).path(DEFAULT_RUN_DIR), sensitive=True)
    except FileNotFoundError:
        return redactor
    redactor.learn_from_config(data.get("merged_cfg") or {})
    return redactor


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.target import TargetPathError, TargetRoot

    target = TargetRoot(args.root)
    redactor = _redactor(args.root)
    added = []
    try:
        with tarfile.open(args.tarfile, "w:gz") as tar:
            for inside in collected_files():
                try:
                    text = target.read_text(inside)
                except (FileNotFoundError, NotADirectoryError, PermissionError,
                        TargetPathError):
                    continue
                if inside.endswith(".json"):
                    try:
                        text = json.dumps(redactor.data(json.loads(text)), indent=2) + "\n"
                    except json.JSONDecodeError:
                        text = redactor.text(text)
                else:
                    text = redactor.text(text)
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{TOP_DIR}{inside}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
                added.append(inside)
    except OSError as exc:
        raise CliError(f"cannot write {args.tarfile}: {exc.strerror or exc}") from exc
    print(f"wrote {args.tarfile} ({len(added)} files)")
    return 0
