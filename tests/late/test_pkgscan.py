"""pkgscan lists what pkgutil.iter_modules lists, without importing pkgutil."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

from bootseed.late import commands, modules
from bootseed.late.pkgscan import iter_modules


def _pkgutil(paths: list[str]) -> list[tuple[str, bool]]:
    return [(info.name, info.ispkg) for info in pkgutil.iter_modules(paths)]


def test_same_as_pkgutil_on_our_packages() -> None:
    for package in (modules, commands):
        assert iter_modules(package.__path__) == _pkgutil(list(package.__path__))


def test_same_as_pkgutil_on_odd_entries(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        d.mkdir()
    (one / "b_mod.py").write_text("")
    (one / "a_mod.py").write_text("")
    (one / "__init__.py").write_text("")
    (one / "_private.py").write_text("")
    (one / "compiled.pyc").write_bytes(b"")
    (one / "ext.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (one / "notes.txt").write_text("")
    (one / "dotted.name.py").write_text("")
    (one / ".py").write_text("")
    (one / "pkg").mkdir()
    (one / "pkg" / "__init__.py").write_text("")
    (one / "plain_dir").mkdir()
    (one / "plain_dir" / "x.py").write_text("")
    (one / "__pycache__").mkdir()
    (two / "a_mod.py").write_text("")  # hidden by one/a_mod.py
    (two / "c_mod.py").write_text("")
    paths = [str(one), str(two), str(tmp_path / "missing")]
    assert iter_modules(paths) == _pkgutil(paths)
    assert ("pkg", True) in iter_modules(paths)


def test_cli_does_not_import_pkgutil() -> None:
    code = ("import sys\nfrom bootseed.late import cli\ncli.build_parser('run')\n"
            "print('pkgutil' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
