"""The root decisions run from the initramfs closure alone: a chroot holding only the
modules ``bootseed.early.closure`` computes (no optional packages, so libblkid is reached
through the ``blkid`` binary), the interpreter, util-linux's blkid and klibc's mount and
umount, which is what a Debian initramfs without busybox has. A module missing from the
closure, or a mount spelling klibc does not take (it has no one-argument remount), would
fail the boot's root switch silently; here it fails the test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bootseed.early import closure

from tests.early.test_volumes_support import Lab, lab, needs_root, root_files
from testsupport.initramfstree import copy_with_libraries, stage_path_tree

__all__ = ["lab"]

KLIBC = Path("/usr/lib/klibc/bin")

# Inside a private mount namespace: the initramfs-like tree gets /dev, /proc, /sys, a /run
# tmpfs and the root on /root; then the stage runs chrooted, then we look at /root.
SCRIPT = r'''
set -e
R="$1"; ROOTDEV="$2"; shift 2
mount --bind /dev "$R/dev"; mount -t proc proc "$R/proc"; mount -t sysfs sysfs "$R/sys"
mount -t tmpfs tmpfs "$R/run"; mount -o ro "$ROOTDEV" "$R/root"
chroot "$R" /usr/bin/python3 -I -S -m bootseed.early rootswitch --rootmnt /root --json "$@"
echo "MARKER=$(cat "$R/root/marker")"
echo "FSTYPE=$(awk -v m="$R/root" '$5 == m' /proc/self/mountinfo | tail -1 \
	| sed 's/.* - //;s/ .*//')"
'''


def _initramfs(tmp_path: Path) -> Path:
    blkid = shutil.which("blkid")
    if blkid is None or not (KLIBC / "mount").exists():
        pytest.skip("needs klibc-utils and util-linux's blkid")
    tree = stage_path_tree(tmp_path / "pathtree")
    initramfs = tmp_path / "initramfs"
    initramfs.mkdir()
    result = closure.compute(set(), [str(tree), *sys.path])
    extensions = closure.install(result, initramfs, optimize=2)
    copy_with_libraries(str(Path(sys.executable).resolve()), initramfs, "/usr/bin/python3")
    for src, target in extensions:
        copy_with_libraries(src, initramfs, target)
    copy_with_libraries(blkid, initramfs, "/usr/sbin/blkid")
    for tool in ("mount", "umount"):
        shutil.copy2(KLIBC / tool, initramfs / "usr/sbin" / tool)
    for interpreter in Path("/usr/lib").glob("klibc-*.so"):
        (initramfs / "lib").mkdir(exist_ok=True)
        shutil.copy2(interpreter, initramfs / "lib" / interpreter.name)
    for name in ("dev", "proc", "sys", "run", "tmp", "root", "media", "etc"):
        (initramfs / name).mkdir(exist_ok=True)
    return initramfs


def _stage(initramfs: Path, root: str, *args: str) -> tuple[dict[str, Any], str, str]:
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", SCRIPT, "sh", str(initramfs),
         root, *args], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr
    doc_text, _, tail = proc.stdout.rpartition("}\n")
    return json.loads(doc_text + "}"), tail, proc.stderr


@pytest.mark.root
@needs_root
def test_takeover_and_overlay_from_the_closure_alone(lab: Lab, tmp_path: Path) -> None:
    initramfs = _initramfs(tmp_path)
    root = lab.ext4("root", "imgroot", root_files("original"))
    ebs = lab.ext4("ebs", "ebs", root_files("ebs-root", {"bootseed-volume.yaml":
                                                          "action: root\n"}))
    doc, tail, stderr = _stage(initramfs, root, "--cmdline", "ro bootseed.overlay=tmpfs",
                               "--device", root, "--device", ebs)
    assert doc["problems"] == [], stderr
    assert [a["action"] for a in doc["actions"]] == ["rootswitch", "takeover", "overlay"]
    assert doc["root"] == ebs
    assert "MARKER=ebs-root" in tail and "FSTYPE=overlay" in tail
    # Nothing leaked out of the namespace: /run was its tmpfs, the mounts went with it.
    assert not (initramfs / "run/bootseed").exists()


@pytest.mark.root
@needs_root
def test_rescue_from_the_closure_alone(lab: Lab, tmp_path: Path) -> None:
    initramfs = _initramfs(tmp_path)
    root = lab.ext4("root", "imgroot", root_files("original"))
    rescue = lab.ext4("rescue", "RESCUE", {"sbin/init": "", "marker": "rescue\n"})
    doc, tail, stderr = _stage(initramfs, root, "--cmdline", "ro", "--device", root,
                               "--device", rescue)
    assert doc["problems"] == [], stderr
    assert [a["action"] for a in doc["actions"]] == ["rootswitch", "rescue"]
    assert "MARKER=rescue" in tail and "FSTYPE=ext4" in tail
