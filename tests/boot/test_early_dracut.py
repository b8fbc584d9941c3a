"""The dracut module builds an initramfs holding a working early stage.

Uses a variant of the lab's base tree with ``dracut-core`` added (cached by its package
list like the lab's own; the normal lab image does not carry dracut): bootseed's Debian
packages are installed in it as in the lab image (bootseed-initramfs ships the dracut
module), dracut builds an initramfs with the module, the listing is checked, and the
stage is run from the unpacked initramfs in a chroot (inside a network namespace of its
own, so nothing can leave).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.image_builder import debinstall, rootfs
from bootseed.image_builder.basetree import DEFAULT_PACKAGES, BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root

pytestmark = pytest.mark.boot

REPO = Path(__file__).resolve().parents[2]
DRACUT = REPO / "initramfs-hooks" / "dracut"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


@pytest.fixture(scope="module")
def dracut_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    if os.geteuid() != 0:
        pytest.skip("builds a base tree with mmdebstrap: run as root")
    work = tmp_path_factory.mktemp("dracut")
    cache = cache_root()
    base = ensure_base_tree(BaseTreeSpec(packages=(*DEFAULT_PACKAGES, "dracut-core")), cache)
    tree = work / "root"
    rootfs.copy_base(base.root, tree)
    debinstall.install_debs(tree, debinstall.ensure_debs(REPO, cache), base.kernel_version)
    module = tree / "usr/lib/dracut/modules.d/50bootseed"
    assert (module / "module-setup.sh").is_file(), "bootseed-initramfs has no dracut module"
    shutil.copy2(DRACUT / "bootseed.conf", tree / "etc/dracut.conf.d/bootseed.conf")
    mounted = []
    try:
        for fstype, target in (("proc", "proc"), ("sysfs", "sys")):
            subprocess.run(["mount", "-t", fstype, fstype, str(tree / target)], check=True)
            mounted.append(tree / target)
        yield tree, base.kernel_version
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(path)], check=False)


def test_dracut_initramfs_holds_a_working_early_stage(dracut_tree: tuple[Path, str]) -> None:
    tree, kernel = dracut_tree
    built = subprocess.run(
        ["chroot", str(tree), "dracut", "--no-hostonly", "--force", "--modules", "bootseed",
         "--kver", kernel, "/tmp/initrd-dracut.img"],
        capture_output=True, text=True, env=ENV, timeout=900, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "bootseed" not in built.stderr or "left out" not in built.stderr, built.stderr
    listing = subprocess.run(["chroot", str(tree), "lsinitrd", "/tmp/initrd-dracut.img"],
                             capture_output=True, text=True, env=ENV, timeout=300, check=True)
    content = listing.stdout
    for wanted in ("usr/bin/python3.11", "usr/lib/python3.11/bootseed/early/premount.pyc",
                   "usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so",
                   "etc/bootseed-early.conf", "hooks/pre-mount/50-bootseed-premount.sh",
                   "isofs.ko", "virtio_net.ko", "overlay.ko"):
        assert wanted in content, f"{wanted} missing from the dracut initramfs"

    # Run the stage from the unpacked initramfs: the no-seed path, no network anywhere.
    unpack = subprocess.run(["chroot", str(tree), "sh", "-c",
                             "mkdir -p /tmp/u && cd /tmp/u && lsinitrd --unpack "
                             "/tmp/initrd-dracut.img"],
                            capture_output=True, text=True, env=ENV, timeout=300, check=False)
    assert unpack.returncode == 0, unpack.stderr
    root = tree / "tmp/u"
    ns = f"bsdracut{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        script = ('mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/python3 -I -S -m '
                  'bootseed.early premount --cmdline "root=LABEL=x quiet" '
                  '--out /run/bootseed --dmi-dir /nonexistent --no-disc-scan')
        run = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", script, str(root)],
                             capture_output=True, text=True, timeout=120, check=False)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    assert run.returncode == 0, run.stderr
    doc = json.loads((root / "run/bootseed/seed.json").read_text())
    assert doc["source"] == "none" and doc["problems"] == [], doc
    assert "bootseed-early: no seed in" in run.stderr
