"""The real package in a real boot: the image builder's image, which installs bootseed with
``apt-get install ./bootseed_*.deb ./bootseed-initramfs_*.deb`` (Debian's own Python
libraries, no venv, no files copied from the tree), and a copy of it after
``apt-get remove bootseed``, run in the image's root filesystem through a loop mount.
Boots:

* installed image, NoCloud seed URL on the kernel command line: the seed is found by the
  package's initramfs stage and applied by the package's units (the boot suite's checks);
* removed image, same seed: nothing of bootseed is left to run (no early stage, no
  generator verdict, no unit), nobody fetches the seed, and the boot reaches multi-user.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from bootseed.grub import MARK_UNIT
from bootseed.image_builder import debinstall
from bootseed.image_builder.build import BuildOptions, build_image
from bootseed.image_builder.guest.report import BEGIN_MARKER, END_MARKER
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult
from bootseed.image_builder.manifest import ImageFile, read_manifest, write_manifest

from tests.boot.test_seeds import REPORT_FILES, assert_example_applied

pytestmark = pytest.mark.boot

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SEED = REPO / "examples" / "nocloud"


@dataclass
class DebImages:
    installed: Path
    removed: Path
    workdir: Path


@contextmanager
def _mounted_root(raw: Path, offset: int, mountpoint: Path) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-o", f"loop,offset={offset}", str(raw), str(mountpoint)],
                   check=True, capture_output=True, timeout=120)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False, capture_output=True,
                       timeout=120)


def _remove_bootseed_from(installed: Path, removed: Path, workdir: Path) -> None:
    subprocess.run(["cp", "--sparse=always", str(installed), str(removed)], check=True,
                   timeout=600)
    manifest = read_manifest(installed)
    with _mounted_root(removed, manifest.root_offset, workdir / "mnt") as root:
        debinstall.remove_bootseed(root, manifest.kernel_version)
        # The package's units are not enabled anywhere; what is left in /etc is the lab's
        # report unit and the GRUB fallback's mark unit, which `bootseed fallback install`
        # wrote (not the package) and which is skipped without /usr/bin/bootseed.
        left = sorted(p.name for p in (root / "etc/systemd/system").rglob("bootseed*.service"))
        assert set(left) <= {"bootseed-lab-report.service", MARK_UNIT}, left
        mark = root / "etc/systemd/system" / MARK_UNIT
        assert "ConditionPathExists=/usr/bin/bootseed" in mark.read_text()
        assert not (root / "usr/bin/bootseed").exists()
        assert not (root / "usr/share/initramfs-tools/hooks/bootseed").exists()
        assert not (root / "lib/systemd/system-generators/bootseed-generator").exists()
    entry = ImageFile(str(removed), "raw", removed.stat().st_size, 0, "")
    write_manifest(dataclasses.replace(manifest, name=removed.stem, files=[entry],
                                       bootseed_debs=[]), removed)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> DebImages:
    if os.geteuid() != 0:
        pytest.skip("building lab images needs root (mmdebstrap --mode=root, chroot)")
    work = tmp_path_factory.mktemp("debimage")
    manifest = build_image(BuildOptions(out_dir=work, name="deb-installed", checksums=False),
                           quiet=True)
    assert [name.split("_")[0] for name in manifest.bootseed_debs] == list(debinstall.PACKAGES)
    installed = work / "deb-installed.raw"
    with _mounted_root(installed, manifest.root_offset, work / "mnt") as root:
        assert not (root / "usr/lib/bootseed").exists(), "a venv or copied tree in the image"
        assert debinstall.installed_versions(root).keys() == set(debinstall.PACKAGES)
    removed = work / "deb-removed.raw"
    _remove_bootseed_from(installed, removed, work)
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
    for unit, times in report.raw.get("agent_units", {}).items():
        assert not times.get("InactiveExitTimestampMonotonic"), f"{unit} was started"
    console = _console_outside_reports(result.console_text())
    assert "bootseed-early" not in console
    assert not BOOTSEED_UNIT_LINE.search(console), BOOTSEED_UNIT_LINE.search(console)
    assert not result.seed_requests, "something still fetched the seed"


# A bootseed unit systemd talks about on the console, other than the lab's own report unit.
BOOTSEED_UNIT_LINE = re.compile(
    r"bootseed(?!-lab)[\w@-]*\.service|Starting bootseed(?!-lab| boot lab)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _console_outside_reports(console: str) -> str:
    """The console without the lab's report blocks (which name the agent units they looked at)."""
    text = ANSI.sub("", console.replace("\r", ""))
    while (start := text.find(BEGIN_MARKER)) >= 0:
        end = text.find(END_MARKER, start)
        text = text[:start] + (text[end + len(END_MARKER):] if end >= 0 else "")
    return text
