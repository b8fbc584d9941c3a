"""One package build per test session, shared by the package and bookworm-chroot tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2]
BUILD_DEB = SOURCE / "scripts" / "build-deb"


def _debian_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "debian"],
                          cwd=SOURCE, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="session")
def deb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bootseed_*.deb and bootseed-initramfs_*.deb (plus .changes), built by scripts/build-deb."""
    if shutil.which("dpkg-buildpackage") is None:
        pytest.fail("dpkg-buildpackage missing: scripts/bootstrap installs dpkg-dev")
    out = tmp_path_factory.mktemp("debs")
    before = _debian_status()
    proc = subprocess.run([str(BUILD_DEB), str(out)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _debian_status() == before, "the build left files in the work tree's debian/"
    return out
