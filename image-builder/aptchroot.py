"""A root tree made ready for apt and maintainer scripts in a chroot.

``/proc``, ``/sys`` and ``/dev`` mounted (update-initramfs, py3compile and
systemd's helpers need them), optionally the host's ``resolv.conf`` for a
download, and everything undone afterwards, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8"}


@contextlib.contextmanager
def apt_chroot(tree: Path, resolv: bool = False) -> Iterator[None]:
    """Mounts for a chroot into ``tree``; ``resolv``: copy the host's resolv.conf in
    (for apt-get update/install from the network) and put the tree's back after."""
    mounted: list[Path] = []
    resolv_conf = tree / "etc/resolv.conf"
    saved = (resolv_conf.read_bytes()
             if resolv_conf.is_file() and not resolv_conf.is_symlink() else b"")
    try:
        for argv, where in ((["-t", "proc", "proc"], "proc"),
                            (["-t", "sysfs", "sysfs"], "sys"),
                            (["--bind", "/dev"], "dev")):
            target = tree / where
            target.mkdir(exist_ok=True)
            subprocess.run(["mount", *argv, str(target)], check=True, timeout=60,
                           capture_output=True)
            mounted.append(target)
        if resolv:
            resolv_conf.unlink(missing_ok=True)
            shutil.copy("/etc/resolv.conf", resolv_conf)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(target)], check=False, timeout=60,
                           capture_output=True)
        if resolv:
            resolv_conf.unlink(missing_ok=True)
            resolv_conf.write_bytes(saved)
