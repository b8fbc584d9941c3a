"""Our grubenv reader/writer against GRUB's own grub-editenv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from bootseed.late.fallback import grubenv

needs_editenv = pytest.mark.skipif(shutil.which("grub-editenv") is None,
                                   reason="needs grub-editenv (grub-common)")


def editenv(path: Path, *args: str) -> str:
    return subprocess.run(["grub-editenv", str(path), *args], capture_output=True, text=True,
                          check=True, timeout=30).stdout


@needs_editenv
def test_our_update_of_a_grub_editenv_block_is_byte_identical(tmp_path: Path) -> None:
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    editenv(theirs, "create")
    editenv(ours, "create")
    editenv(theirs, "set", "bootseed_tries=2", "saved_entry=gnulinux-simple")
    grubenv.update(ours, {"bootseed_tries": "2", "saved_entry": "gnulinux-simple"})
    assert ours.read_bytes() == theirs.read_bytes()
    editenv(theirs, "set", "bootseed_tries=1")
    grubenv.update(ours, {"bootseed_tries": "1"})
    assert ours.read_bytes() == theirs.read_bytes()


@needs_editenv
def test_grub_editenv_reads_ours_and_we_read_theirs(tmp_path: Path) -> None:
    path = tmp_path / "grubenv"
    grubenv.update(path, {"bootseed_tries": "3", "bootseed_lab_args": "a=1 ds=nocloud;s=x"})
    listed = editenv(path, "list").splitlines()
    assert listed == ["bootseed_tries=3", "bootseed_lab_args=a=1 ds=nocloud;s=x"]
    # Values GRUB escapes: a backslash and a newline.
    editenv(path, "set", "odd=back\\slash", "multi=one\ntwo")
    values = grubenv.read(path)
    assert values["odd"] == "back\\slash" and values["multi"] == "one\ntwo"
    assert values["bootseed_tries"] == "3"
    # And our writing of those escapes is byte-identical to GRUB's.
    before = path.read_bytes()
    grubenv.update(path, {})
    assert path.read_bytes() == before
    editenv(path, "unset", "odd")
    assert "odd" not in grubenv.read(path)


def test_update_keeps_other_variables_size_mode_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "grubenv"
    path.write_bytes(grubenv.render({"keep": "me", "bootseed_tries": "1"}))
    path.chmod(0o600)
    inode = path.stat().st_ino
    grubenv.update(path, {"bootseed_tries": "2"})
    # In place: GRUB's block list of the file stays right.
    assert path.stat().st_ino == inode
    assert grubenv.read(path) == {"keep": "me", "bootseed_tries": "2"}
    assert path.stat().st_size == grubenv.BLOCK_SIZE
    assert path.stat().st_mode & 0o777 == 0o600
    grubenv.update(path, {"keep": None})
    assert grubenv.read(path) == {"bootseed_tries": "2"}
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "grubenv"
    path.write_bytes(b"not a block")
    with pytest.raises(grubenv.GrubenvError, match="header"):
        grubenv.read(path)
    path.write_bytes(grubenv.HEADER + b"#" * 10)
    with pytest.raises(grubenv.GrubenvError, match="35 bytes"):
        grubenv.read(path)
    with pytest.raises(grubenv.GrubenvError, match="the block has"):
        grubenv.render({"big": "x" * 1100})
    with pytest.raises(grubenv.GrubenvError, match="bad variable name"):
        grubenv.render({"a=b": "1"})
    assert grubenv.read(tmp_path / "missing") == {}
    # A bad block is never rewritten in place; a missing one is created.
    with pytest.raises(grubenv.GrubenvError):
        grubenv.update(path, {"x": "1"})
    grubenv.update(tmp_path / "new" / "grubenv", {"x": "1"})
    assert (tmp_path / "new" / "grubenv").stat().st_size == grubenv.BLOCK_SIZE
