"""``TargetRoot.symlink``: the link is made inside the target, whatever is on the way."""

from __future__ import annotations

import os
from pathlib import Path

from bootseed.late.target import TargetRoot


def test_symlink_creates_parents_and_replaces_an_existing_link(tmp_path: Path) -> None:
    target = TargetRoot(tmp_path / "root")
    (tmp_path / "root").mkdir()
    target.symlink("/etc/localtime", "../usr/share/zoneinfo/UTC")
    assert os.readlink(tmp_path / "root/etc/localtime") == "../usr/share/zoneinfo/UTC"
    target.symlink("/etc/localtime", "../usr/share/zoneinfo/Europe/Paris")
    assert os.readlink(tmp_path / "root/etc/localtime") == "../usr/share/zoneinfo/Europe/Paris"
    assert sorted(os.listdir(tmp_path / "root/etc")) == ["localtime"]


def test_symlink_replaces_a_file_and_does_not_follow_a_link_at_the_name(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host file\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink(str(outside), root / "etc/localtime")
    TargetRoot(root).symlink("/etc/localtime", "../usr/share/zoneinfo/UTC")
    assert os.readlink(root / "etc/localtime") == "../usr/share/zoneinfo/UTC"
    assert outside.read_text() == "host file\n"


def test_symlink_through_an_escaping_directory_link_stays_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(str(outside), root / "etc")  # absolute: restarts at the target root
    TargetRoot(root).symlink("/etc/localtime", "x")
    assert list(outside.iterdir()) == []
    # The absolute link text names /tmp/.../outside inside the target: made there.
    inner = root / str(outside).lstrip("/") / "localtime"
    assert os.readlink(inner) == "x"
