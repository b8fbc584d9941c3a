"""What the initramfs-tools hook copies in for the initramfs SSH server (``bootseed.sshd``).

``python3 -m bootseed.early.sshdfiles [--root DIR]`` prints one executable per line (the
hook runs ``copy_exec`` on each, which brings their shared libraries along) and exits 1,
naming what is missing, when Debian's dropbear is not installed: the hook then leaves
the server out with a warning and the rest of the early stage in.

- ``dropbear`` and ``dropbearkey`` (package ``dropbear-bin``): the server and the host
  key generator (keys are made at boot, per instance, never at build time);
- ``e2fsck``: what the session repairs a root with. Not ``fsck``: initramfs-tools checks
  the root at boot whenever ``fsck`` is in the initramfs, and its own fsck hook copies it
  only together with ``logsave`` and the ``fsck.TYPE`` helpers; ``fsck`` alone would make
  every boot's check fail;
- ``blkid``: to find the real root by label or UUID when ``root=`` is wrong.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = ("dropbear", "dropbearkey")
OPTIONAL = ("e2fsck", "blkid")
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass
class FileList:
    executables: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def find_executable(name: str, root: Path) -> str | None:
    """The executable's path as seen from inside ``root`` (first of SEARCH_DIRS)."""
    for directory in SEARCH_DIRS:
        candidate = root / directory.lstrip("/") / name
        if candidate.is_file() and candidate.stat().st_mode & 0o111:
            return f"{directory}/{name}"
    return None


def initramfs_files(root: Path = Path("/")) -> FileList:
    found = FileList()
    for name in REQUIRED + OPTIONAL:
        path = find_executable(name, root)
        if path is not None:
            found.executables.append(path)
        elif name in REQUIRED:
            found.missing.append(name)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bootseed.early.sshdfiles",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", default="/", help="the tree the initramfs is built from")
    args = parser.parse_args(argv)
    files = initramfs_files(Path(args.root))
    if files.missing:
        print(f"not installed: {', '.join(files.missing)} (package dropbear-bin)",
              file=sys.stderr)
        return 1
    print("\n".join(files.executables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
