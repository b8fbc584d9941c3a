"""Put user-data parts where the modules expect them.

Shell scripts become files that the ``scripts_*`` modules run later (user
scripts per instance, vendor scripts per instance, ``per-boot`` / ``per-instance``
/ ``per-once`` into the shared directories); boothooks run at once, on every
boot, with ``INSTANCE_ID`` set. Cloud-config parts were already merged by the
user-data engine; any other type is reported and left alone.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Problem
from bootseed.late.execute import TargetExecError, run_in_target
from bootseed.late.state import PER_BOOT_SCRIPTS, PER_INSTANCE_SCRIPTS, PER_ONCE_SCRIPTS
from bootseed.late.target import TargetRoot
from bootseed.late.userdata.types import Part

SHELL = "text/x-shellscript"
BOOTHOOK = "text/cloud-boothook"
_SCRIPT_DIRS = {
    "text/x-shellscript-per-boot": PER_BOOT_SCRIPTS,
    "text/x-shellscript-per-instance": PER_INSTANCE_SCRIPTS,
    "text/x-shellscript-per-once": PER_ONCE_SCRIPTS,
}
# Handled inside the user-data engine; nothing left to do here.
_CONSUMED = {
    "text/cloud-config",
    "text/cloud-config-archive",
    "text/cloud-config-jsonp",
    "text/x-include-url",
    "text/x-include-once-url",
    "text/jinja2",
    "multipart/mixed",
    "text/plain",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


def part_file_name(part: Part) -> str:
    base = Path(part.filename).name if part.filename else ""
    base = _UNSAFE_NAME.sub("_", base).lstrip(".")
    return base or f"part-{part.index:03d}"


def install_parts(
    parts: list[Part],
    *,
    target: TargetRoot,
    instance_dir: Path,
    instance_id: str,
    vendor: bool,
    log: logging.Logger,
) -> list[Problem]:
    issues: list[Problem] = []
    kind = "vendor-data" if vendor else "user-data"
    for part in parts:
        where = f"{kind} part {part.index}" + (f" ({part.filename})" if part.filename else "")
        ctype = part.content_type.split(";")[0].strip().lower()
        name = part_file_name(part)
        if ctype == SHELL:
            folder = instance_dir / ("vendor_scripts" if vendor else "scripts")
            _write_script(folder / name, part.payload)
        elif ctype in _SCRIPT_DIRS:
            _write_script(target.real_path(_SCRIPT_DIRS[ctype]) / name, part.payload)
        elif ctype == BOOTHOOK:
            path = instance_dir / "boothooks" / name
            _write_script(path, _strip_boothook_header(part.payload))
            inside = "/" + str(path.relative_to(target.root)).lstrip("/")
            try:
                run_in_target(target, [inside], env={"INSTANCE_ID": instance_id}, what=where)
                log.info("%s: boothook ran", where)
            except TargetExecError as exc:
                issues.append(Problem(where, f"boothook failed: {exc}"))
        elif ctype not in _CONSUMED:
            issues.append(Problem(where, f"content type {ctype} is not supported; ignored"))
    return issues


def _strip_boothook_header(payload: bytes) -> bytes:
    """``#cloud-boothook`` is a marker, not an interpreter; make the script runnable."""
    first, _, rest = payload.partition(b"\n")
    if first.strip().lower().startswith(b"#cloud-boothook"):
        return b"#!/bin/sh\n" + rest
    return payload


def _write_script(path: Path, payload: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, payload, mode=0o700)
