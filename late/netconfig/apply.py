"""Render and write all-or-nothing: one problem, and not one file is touched."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bootseed.contract.problems import Problem
from bootseed.late.netconfig.model import NetworkConfig
from bootseed.late.netconfig.networkd import NETWORK_DIR, PREFIX, render
from bootseed.late.netconfig.rename import rename_now
from bootseed.late.target import TargetPathError, TargetRoot


@dataclass
class Applied:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # After the files are written (warnings, never a reason to undo them).
    warnings: list[Problem] = field(default_factory=list)


def apply(target: TargetRoot, config: NetworkConfig,
          problems: list[Problem] | None = None) -> Applied:
    """Write ``config``'s files; our earlier files that it no longer has are removed;
    on the running system, NICs the files rename are renamed now (:mod:`.rename`).
    With ``problems`` (the parser's) or a renderer problem nothing is written."""
    rendered = render(config)
    result = Applied(problems=[*(problems or []), *rendered.problems])
    if result.problems:
        return result
    for name, text in rendered.files.items():
        target.write(f"{NETWORK_DIR}/{name}", text, mode=0o644)
        result.written.append(f"{NETWORK_DIR}/{name}")
    for name in ours(target):
        if name not in rendered.files:
            target.unlink(f"{NETWORK_DIR}/{name}")
            result.removed.append(f"{NETWORK_DIR}/{name}")
    result.warnings += rename_now(target, config)
    return result


def ours(target: TargetRoot) -> list[str]:
    try:
        with target.open_dir(NETWORK_DIR) as fd:
            return sorted(n for n in os.listdir(fd) if n.startswith(PREFIX))
    except (OSError, TargetPathError):
        return []
