"""The package cache of the image builder: keyed by the source, reused, pruned."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from bootseed.image_builder import debinstall

REPO = Path(__file__).resolve().parents[2]


def _git_tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    (src / ".gitignore").write_text("build/\n")
    (src / "a.py").write_text("print('a')\n")
    return src


def test_source_key_follows_content_mode_and_new_files_but_not_ignored_ones(tmp_path: Path):
    src = _git_tree(tmp_path)
    first = debinstall.source_key(src)
    (src / "build").mkdir()
    (src / "build" / "junk.o").write_bytes(b"\0")
    assert debinstall.source_key(src) == first, "an ignored file changed the key"
    (src / "a.py").write_text("print('b')\n")
    second = debinstall.source_key(src)
    assert second != first
    (src / "a.py").chmod(0o755)
    third = debinstall.source_key(src)
    assert third != second
    (src / "new.txt").write_text("x")
    assert debinstall.source_key(src) != third


def test_source_key_outside_git_is_a_clear_error(tmp_path: Path):
    with pytest.raises(debinstall.DebInstallError, match="cannot list the source files"):
        debinstall.source_key(tmp_path)


def test_packages_are_built_once_then_reused(tmp_path: Path):
    cache = tmp_path / "cache"
    built = debinstall.ensure_debs(REPO, cache)
    assert not built.reused
    assert [d.name.split("_")[0] for d in built.debs] == list(debinstall.PACKAGES)
    for deb in built.debs:
        fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Architecture"],
                                capture_output=True, text=True, check=True).stdout
        assert "Architecture: all" in fields
    again = debinstall.ensure_debs(REPO, cache)
    assert again.reused and again.directory == built.directory and again.debs == built.debs
    assert not list((cache / debinstall.CACHE_DIR).glob("*.partial"))


def test_old_entries_are_pruned_newest_kept(tmp_path: Path):
    root = tmp_path / debinstall.CACHE_DIR
    now = time.time()
    for age, name in enumerate(["e0", "e1", "e2", "e3", "e4", "e5"]):
        entry = root / name
        entry.mkdir(parents=True)
        (root / f"{name}.lock").touch()
        os.utime(entry, (now - age * 60, now - age * 60))
    debinstall._prune(root, keep="e5")
    left = sorted(p.name for p in root.iterdir() if p.is_dir())
    # The entry in use plus the newest KEEP_ENTRIES - 1 others.
    assert left == ["e0", "e1", "e2", "e5"]
    assert not (root / "e4.lock").exists()


def test_a_tree_without_the_packages_is_named(tmp_path: Path):
    with pytest.raises(debinstall.DebInstallError, match="expected one bootseed_"):
        debinstall._found_debs(tmp_path)


def test_stale_bytecode_names_sources_without_a_matching_pyc(tmp_path: Path):
    import compileall
    import py_compile
    import sys

    package = tmp_path / "bootseed"
    (package / "late").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "late" / "runner.py").write_text("x = 1\n")
    tag = sys.implementation.cache_tag
    assert debinstall.stale_bytecode(package, tag) == [package / "__init__.py",
                                                       package / "late" / "runner.py"]
    assert compileall.compile_dir(str(package), quiet=1,
                                  invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    assert debinstall.stale_bytecode(package, tag) == []
    # Another interpreter's tag, a changed source, a hash-based or truncated .pyc: stale.
    assert len(debinstall.stale_bytecode(package, "cpython-20")) == 2
    source = package / "late" / "runner.py"
    source.write_text("x = 22\n")
    assert debinstall.stale_bytecode(package, tag) == [source]
    compileall.compile_file(str(source), quiet=1,
                            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    assert debinstall.stale_bytecode(package, tag) == [source]
    compileall.compile_file(str(source), quiet=1, force=True,
                            invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    assert debinstall.stale_bytecode(package, tag) == []
    (package / "__pycache__" / f"__init__.{tag}.pyc").write_bytes(b"\0" * 8)
    assert debinstall.stale_bytecode(package, tag) == [package / "__init__.py"]
