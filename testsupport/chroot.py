"""A tiny runnable target root: ``/bin/sh`` (the host's dash and its libraries)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bootseed.late.target import TargetRoot


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                libs.append(part)
                break
    return libs


def make_shell_root(root: Path) -> TargetRoot:
    """Copy dash and what it links into ``root`` so ``chroot root /bin/sh`` works."""
    shell = os.path.realpath(shutil.which("dash") or "/bin/sh")
    for src in [shell, *_libraries(shell)]:
        dest = root / src.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(src), dest)
    (root / "bin").mkdir(parents=True, exist_ok=True)
    sh = root / "bin" / "sh"
    if not sh.exists():
        os.symlink(shell, sh)
    (root / "tmp").mkdir(mode=0o1777, exist_ok=True)
    return TargetRoot(root)
