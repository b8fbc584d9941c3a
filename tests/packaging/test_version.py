"""One version number: ``bootseed.contract.__version__``; everything else reads or checks it."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from bootseed.contract import __version__

SOURCE = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("contract", "early", "late", "image-builder", "grub", "man", "bench", "scripts")


def test_debian_changelog_matches_the_one_version() -> None:
    # debian/changelog cannot import Python: its newest entry must say the same.
    newest = (SOURCE / "debian" / "changelog").read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"bootseed \((?:\d+:)?([^)\s]+?)(?:-[^-)\s]+)?\) ", newest)
    assert match is not None, newest
    assert match.group(1) == __version__


def test_setup_cfg_and_the_installed_metadata_read_it() -> None:
    setup_cfg = (SOURCE / "setup.cfg").read_text(encoding="utf-8")
    assert re.search(r"^version = attr: contract\.__version__$", setup_cfg, re.M)
    assert version("bootseed") == __version__


def test_no_other_module_writes_a_version() -> None:
    written = [path.relative_to(SOURCE)
               for top in SOURCE_DIRS for path in (SOURCE / top).rglob("*.py")
               if re.search(r"^__version__\s*=", path.read_text(encoding="utf-8"), re.M)]
    assert written == [Path("contract/__init__.py")]
