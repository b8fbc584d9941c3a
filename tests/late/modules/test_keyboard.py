from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bootseed.late.modules import keyboard

from testsupport.targetfs import make_ctx, make_target


def test_layout_only_gets_the_defaults(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"keyboard": {"layout": "de"}})
    keyboard.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text(keyboard.KEYBOARD_FILE) == (
        'XKBMODEL="pc105"\nXKBLAYOUT="de"\nXKBVARIANT=""\nXKBOPTIONS=""\n')


def test_every_key_and_other_lines_kept(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    target.write(keyboard.KEYBOARD_FILE, '# KEYBOARD CONFIGURATION FILE\nXKBMODEL="pc104"\n'
                 'XKBLAYOUT="us"\nBACKSPACE="guess"\n')
    ctx = make_ctx(target, {"keyboard": {"layout": "us,de", "model": "pc104",
                                         "variant": ",nodeadkeys",
                                         "options": "grp:alt_shift_toggle,ctrl:nocaps"}})
    keyboard.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text(keyboard.KEYBOARD_FILE).splitlines() == [
        'XKBMODEL="pc104"', 'XKBLAYOUT="us,de"', 'XKBVARIANT=",nodeadkeys"',
        'XKBOPTIONS="grp:alt_shift_toggle,ctrl:nocaps"',
        "# KEYBOARD CONFIGURATION FILE", 'BACKSPACE="guess"']


@pytest.mark.parametrize(("cfg", "wheres"), [
    ({"model": "pc105"}, ["keyboard.layout"]),
    ({"layout": "de", "variant": 'x"; rm -rf /'}, ["keyboard.variant"]),
    ({"layout": "de\nXKBMODEL=evil", "options": 3}, ["keyboard.layout", "keyboard.options"]),
    ("de", ["keyboard"]),
])
def test_bad_values_reported_by_key_and_nothing_written(
        tmp_path: Path, cfg: Any, wheres: list[str]) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"keyboard": cfg})
    keyboard.MODULE.handle(ctx)
    assert [p.where for p in ctx.problems] == wheres
    assert not target.exists(keyboard.KEYBOARD_FILE)
