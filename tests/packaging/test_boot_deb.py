"""The real package in a real boot: a lab image with bootseed installed from the .deb.

The image is assembled from the image builder's public steps (cached bookworm base tree,
system configuration, lab report unit, GRUB, disk), except that bootseed comes from
``apt-get install ./bootseed_*.deb ./bootseed-initramfs_*.deb`` with Debian's own Python
libraries: no wheels, no venv, no files copied from the tree. A second image is the same
tree after ``apt-get remove bootseed``. Boots:

* installed image, NoCloud seed URL on the kernel command line: the seed is found by the
  package's initramfs stage and applied by the package's units (the boot suite's checks);
* removed image, same seed: nothing of bootseed is left to run (no early stage, no
  generator verdict, no unit), nobody fetches the seed, and the boot reaches multi-user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from bootseed.image_builder import disk, grub, rootfs
from bootseed.image_builder.basetree import BaseTree, BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.build import DEFAULT_KERNEL_ARGS, DEFAULT_ROOT_SIZE, ROOT_LABEL
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult
from bootseed.image_builder.manifest import ImageFile, ImageManifest, write_manifest

from tests.boot.test_seeds import REPORT_FILES, assert_example_applied

pytestmark = pytest.mark.boot

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SEED = REPO / "examples" / "nocloud"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8"}


@dataclass
class DebImages:
    installed: Path
    removed: Path
    workdir: Path


@contextmanager
def _chroot_env(tree: Path, archives: Path) -> Iterator[None]:
    mounted: list[Path] = []
    resolv = tree / "etc/resolv.conf"
    saved = resolv.read_bytes() if resolv.exists() and not resolv.is_symlink() else b""
    try:
        for argv, where in ((["-t", "proc", "proc"], "proc"), (["-t", "sysfs", "sysfs"], "sys"),
                            (["--bind", "/dev"], "dev"),
                            (["--bind", str(archives)], "var/cache/apt/archives")):
            subprocess.run(["mount", *argv, str(tree / where)], check=True, timeout=60,
                           capture_output=True)
            mounted.append(tree / where)
        resolv.unlink(missing_ok=True)
        shutil.copy("/etc/resolv.conf", resolv)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60)
        resolv.unlink(missing_ok=True)
        resolv.write_bytes(saved)


def _chroot(tree: Path, *argv: str) -> str:
    proc = subprocess.run(["chroot", str(tree), *argv], capture_output=True, text=True,
                          timeout=1800, env=APT_ENV)
    assert proc.returncode == 0, f"{argv}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def _make_disk(tree: Path, raw: Path, base: BaseTree, work: Path) -> Path:
    layout = disk.DiskLayout(root_bytes=DEFAULT_ROOT_SIZE)
    disk.write_partition_table(raw, layout)
    disk.make_root_filesystem(raw, layout, tree, ROOT_LABEL)
    core = grub.make_core_image(work / f"{raw.stem}.core.img", ROOT_LABEL)
    grub.install_bios_grub(raw, core, layout.bios_start, layout.bios_sectors)
    manifest = ImageManifest(
        name=raw.stem,
        files=[ImageFile(str(raw), "raw", raw.stat().st_size, disk.allocated_bytes(raw), "")],
        root_label=ROOT_LABEL,
        root_fs_uuid=disk.fs_uuid(raw, layout.root_offset),
        root_size=layout.root_bytes,
        root_offset=layout.root_offset,
        grubenv_offset=disk.file_disk_offset(raw, layout.root_offset, "/boot/grub/grubenv"),
        kernel_version=base.kernel_version,
        kernel_args=DEFAULT_KERNEL_ARGS,
        base_key=base.key,
        base_reused=base.reused,
        bootseed_wheel="",
        initramfs_hook=True,
        packages=base.packages,
    )
    write_manifest(manifest, raw)
    return raw


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, deb_dir: Path) -> DebImages:
    if os.geteuid() != 0:
        pytest.skip("building lab images needs root (mmdebstrap --mode=root, chroot)")
    cache = cache_root()
    base = ensure_base_tree(BaseTreeSpec(), cache)
    work = tmp_path_factory.mktemp("debimage")
    tree = work / "root"
    rootfs.copy_base(base.root, tree)
    rootfs.configure_system(tree, ROOT_LABEL, rootfs.DEFAULT_HOSTNAME)
    rootfs.install_lab_files(tree)
    rootfs.install_grub_files(tree, ROOT_LABEL, DEFAULT_KERNEL_ARGS)
    debs = sorted(deb_dir.glob("*.deb"))
    assert len(debs) == 2
    for deb in debs:
        shutil.copy(deb, tree / "tmp" / deb.name)
    archives = cache / "debs"
    archives.mkdir(parents=True, exist_ok=True)
    with _chroot_env(tree, archives):
        _chroot(tree, "apt-get", "update", "-q")
        _chroot(tree, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                *(f"/tmp/{d.name}" for d in debs))
        initramfs = _chroot(tree, "lsinitramfs", f"/boot/initrd.img-{base.kernel_version}")
    assert "scripts/init-premount/bootseed" in initramfs.splitlines()
    assert not (tree / "usr/lib/bootseed/venv").exists()
    installed = _make_disk(tree, work / "deb-installed.raw", base, work)
    with _chroot_env(tree, archives):
        _chroot(tree, "apt-get", "remove", "-y", "-q", "bootseed")
        initramfs = _chroot(tree, "lsinitramfs", f"/boot/initrd.img-{base.kernel_version}")
    assert "scripts/init-premount/bootseed" not in initramfs.splitlines()
    removed = _make_disk(tree, work / "deb-removed.raw", base, work)
    shutil.rmtree(tree)
    return DebImages(installed, removed, work)


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def test_installed_package_applies_the_nocloud_seed(images: DebImages) -> None:
    lab = BootLab(images.installed, images.workdir / "boots-installed")
    result = lab.boot(BootOptions(nocloud_dir=EXAMPLE_SEED, report_files=REPORT_FILES))
    assert_example_applied(result, "nocloud")
    report = result.report
    assert report is not None
    assert report.generator.startswith("enabled: ds=nocloud"), _diagnose(result)
    console = result.console_text()
    assert "bootseed-early: seed from nocloud" in console, _diagnose(result)
    assert "bootseed-final.service" in console or "final stage" in console
    print(f"deb boot: {result.seconds:.0f}s wall, multi-user at "
          f"{report.raw.get('multi_user_reached')}s guest uptime")


def test_removed_package_leaves_nothing_and_the_image_boots(images: DebImages) -> None:
    lab = BootLab(images.removed, images.workdir / "boots-removed")
    result = lab.boot(BootOptions(nocloud_dir=EXAMPLE_SEED, status_timeout=30))
    report = result.report
    assert report is not None, _diagnose(result)
    assert not result.timed_out, _diagnose(result)
    multi_user = report.raw.get("multi_user_reached")
    assert isinstance(multi_user, float) and multi_user > 0, _diagnose(result)
    assert report.generator == "", "bootseed-generator still ran"
    assert report.status is None, report.raw.get("status")
    console = result.console_text()
    assert "bootseed-early" not in console
    assert "Starting bootseed" not in console and "bootseed.service" not in console
    assert not result.seed_requests, "something still fetched the seed"
