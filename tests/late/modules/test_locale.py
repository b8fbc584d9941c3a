"""``locale`` against a runnable target: ``locale`` and ``locale-gen`` there are small
shell scripts run under chroot, sharing one list of built locales."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import locale
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx, make_target

BUILT = "/var/lib/test-locales"
LOCALE_TOOL = f"""#!/bin/sh
echo C
echo C.utf8
echo POSIX
[ -f {BUILT} ] && while read -r name; do echo "$name"; done < {BUILT}
exit 0
"""
# Builds (records) every uncommented entry of /etc/locale.gen, as glibc's locale-gen does.
LOCALE_GEN_TOOL = f"""#!/bin/sh
: > {BUILT}
while read -r line; do
  case "$line" in
    "#"*|"") ;;
    *) set -- $line; echo "$1" >> {BUILT} ;;
  esac
done < /etc/locale.gen
echo "Generating locales done."
"""
SUPPORTED = "en_US.UTF-8 UTF-8\nde_DE ISO-8859-1\nde_DE.UTF-8 UTF-8\nsr_RS@latin UTF-8\n"
LOCALE_GEN = "# en_US.UTF-8 UTF-8\n# de_DE.UTF-8 UTF-8\n"


def _tool(root: Path, path: str, text: str) -> None:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    os.chmod(dest, 0o755)


def _target(root: Path, with_locales: bool = True) -> TargetRoot:
    target = make_target(root)
    make_shell_root(root)
    (root / "var/lib").mkdir(parents=True, exist_ok=True)
    _tool(root, "/usr/bin/locale", LOCALE_TOOL)
    if with_locales:
        _tool(root, "/usr/sbin/locale-gen", LOCALE_GEN_TOOL)
        (root / "usr/share/i18n").mkdir(parents=True)
        (root / "usr/share/i18n/SUPPORTED").write_text(SUPPORTED)
        (root / "etc/locale.gen").write_text(LOCALE_GEN)
    return target


def test_missing_locale_is_enabled_and_generated(tmp_path: Path) -> None:
    target = _target(tmp_path)
    (tmp_path / "etc/default").mkdir()
    (tmp_path / "etc/default/locale").write_text("LANG=C.UTF-8\nLC_TIME=C\n")
    ctx = make_ctx(target, {"locale": "de_DE.UTF-8"})
    locale.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/etc/default/locale") == "LC_TIME=C\nLANG=de_DE.UTF-8\n"
    assert target.read_text("/etc/locale.gen") == "# en_US.UTF-8 UTF-8\nde_DE.UTF-8 UTF-8\n"
    assert target.read_text(BUILT) == "de_DE.UTF-8\n"


def test_locale_not_in_locale_gen_is_added_with_its_charset(tmp_path: Path) -> None:
    target = _target(tmp_path)
    ctx = make_ctx(target, {"locale": "sr_RS@latin", "locale_configfile": "/etc/locale.conf"})
    locale.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/etc/locale.conf") == "LANG=sr_RS@latin\n"
    assert target.read_text("/etc/locale.gen").endswith("\nsr_RS@latin UTF-8\n")
    assert not target.exists("/etc/default/locale")


@pytest.mark.parametrize("name", ["C.UTF-8", "POSIX"])
def test_builtin_and_built_locales_are_not_generated(tmp_path: Path, name: str) -> None:
    target = _target(tmp_path)
    ctx = make_ctx(target, {"locale": name})
    locale.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/etc/default/locale") == f"LANG={name}\n"
    assert target.read_text("/etc/locale.gen") == LOCALE_GEN
    assert not target.exists(BUILT)


def test_already_built_locale_runs_no_locale_gen(tmp_path: Path) -> None:
    target = _target(tmp_path)
    (tmp_path / BUILT.lstrip("/")).write_text("en_US.utf8\n")
    ctx = make_ctx(target, {"locale": "en_US.UTF-8"})
    locale.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/etc/locale.gen") == LOCALE_GEN


def test_without_locales_package_lang_is_written_and_the_gap_reported(tmp_path: Path) -> None:
    target = _target(tmp_path, with_locales=False)
    ctx = make_ctx(target, {"locale": "en_US.UTF-8"})
    locale.MODULE.handle(ctx)
    assert target.read_text("/etc/default/locale") == "LANG=en_US.UTF-8\n"
    (problem,) = ctx.problems
    assert problem.where == "locale" and problem.level is Level.ERROR
    assert "locales package (locale-gen) is not installed" in problem.message


def test_unsupported_locale_is_reported(tmp_path: Path) -> None:
    target = _target(tmp_path)
    ctx = make_ctx(target, {"locale": "xx_YY.UTF-8"})
    locale.MODULE.handle(ctx)
    (problem,) = ctx.problems
    assert "not listed" in problem.message
    assert target.read_text("/etc/locale.gen") == LOCALE_GEN


def test_failing_locale_gen_is_reported_with_its_output(tmp_path: Path) -> None:
    target = _target(tmp_path)
    _tool(tmp_path, "/usr/sbin/locale-gen", "#!/bin/sh\necho 'disk full' >&2\nexit 3\n")
    ctx = make_ctx(target, {"locale": "de_DE.UTF-8"})
    locale.MODULE.handle(ctx)
    (problem,) = ctx.problems
    assert "status 3" in problem.message and "disk full" in problem.message


@pytest.mark.parametrize(("cfg", "where"), [
    ({"locale": "en_US.UTF-8\nLD_PRELOAD=/x"}, "locale"),
    ({"locale": 7}, "locale"),
    ({"locale": "de_DE.UTF-8", "locale_configfile": "etc/locale"}, "locale_configfile"),
    ({"locale": "de_DE.UTF-8", "locale_configfile": "/etc/../x"}, "locale_configfile"),
])
def test_bad_values_are_reported_by_key_and_nothing_changes(
        tmp_path: Path, cfg: dict[str, object], where: str) -> None:
    target = _target(tmp_path)
    ctx = make_ctx(target, cfg)
    locale.MODULE.handle(ctx)
    (problem,) = ctx.problems
    assert problem.where == where
    assert not target.exists("/etc/default/locale")
    assert target.read_text("/etc/locale.gen") == LOCALE_GEN
