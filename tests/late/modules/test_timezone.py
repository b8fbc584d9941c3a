from __future__ import annotations

import os
from pathlib import Path

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import timezone

from testsupport.targetfs import make_ctx, make_target

TZIF = b"TZif2" + b"\0" * 40


def _zones(root: Path) -> None:
    zi = root / "usr/share/zoneinfo"
    (zi / "Europe").mkdir(parents=True)
    (zi / "Europe/Berlin").write_bytes(TZIF)
    (zi / "UTC").write_bytes(TZIF)
    (zi / "zone.tab").write_text("# not a zone\n")
    os.symlink("../UTC", zi / "Europe/Zulu")  # tzdata's backward links are symlinks


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "Europe/Zulu"])
def test_sets_zone(tmp_path: Path, name: str) -> None:
    target = make_target(tmp_path)
    _zones(tmp_path)
    (tmp_path / "etc/localtime").write_text("old real file\n")
    ctx = make_ctx(target, {"timezone": name})
    timezone.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/etc/timezone") == f"{name}\n"
    assert os.readlink(tmp_path / "etc/localtime") == f"../usr/share/zoneinfo/{name}"
    assert target.read_bytes("/etc/localtime") == TZIF


@pytest.mark.parametrize("name", ["Mars/Olympus", "zone.tab", "Europe", "../../etc/passwd",
                                  "/etc/passwd", "Europe/Berlin\n", 5])
def test_bad_zone_reported_nothing_changes(tmp_path: Path, name: object) -> None:
    target = make_target(tmp_path)
    _zones(tmp_path)
    ctx = make_ctx(target, {"timezone": name})
    timezone.MODULE.handle(ctx)
    (problem,) = ctx.problems
    assert problem.where == "timezone" and problem.level is Level.ERROR
    assert "left as it is" in problem.message
    assert not target.exists("/etc/timezone") and not target.exists("/etc/localtime")


def test_zone_link_escaping_the_target_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "host-zone"
    outside.write_bytes(TZIF)
    root = tmp_path / "root"
    root.mkdir()
    target = make_target(root)
    _zones(root)
    os.symlink(str(outside), root / "usr/share/zoneinfo/Europe/Host")
    ctx = make_ctx(target, {"timezone": "Europe/Host"})
    timezone.MODULE.handle(ctx)
    assert len(ctx.problems) == 1 and not target.exists("/etc/timezone")
