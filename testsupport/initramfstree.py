"""The early stage laid out as an initramfs holds it, for tests and benchmarks.

``stage_path_tree`` makes a ``sys.path`` entry with only ``bootseed/early`` and the
``bootseed/contract`` it imports: an interpreter that does not see the venv's
editable install (Debian's python3, a chroot) finds the stage there, and the
closure is computed from it as the initramfs hook computes it.
``copy_with_libraries`` is what initramfs-tools' ``copy_exec`` does.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def stage_path_tree(root: Path) -> Path:
    """``root`` holding bootseed/early and bootseed/contract (symlinks to the source)."""
    (root / "bootseed").mkdir(parents=True)
    for package in ("early", "contract"):
        (root / "bootseed" / package).symlink_to(REPO / package)
    return root


def copy_with_libraries(src: str, dest_root: Path, target: str | None = None) -> None:
    """The file plus the libraries ldd names, each copied once under ``dest_root``."""
    out = dest_root / (target or src).lstrip("/")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, out)
    listing = subprocess.run(["ldd", src], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        words = line.split()
        lib = words[2] if "=>" in words and len(words) > 2 else (words[0] if words else "")
        if lib.startswith("/"):
            lib_out = dest_root / lib.lstrip("/")
            if not lib_out.exists():
                lib_out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(lib, lib_out)
