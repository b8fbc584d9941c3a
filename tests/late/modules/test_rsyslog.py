"""``rsyslog`` (cloud-init 22.4): rule files, remotes, the legacy list form, bad items."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bootseed.late.linegrammar import LineGrammarError
from bootseed.late.modules import rsyslog

from testsupport.targetfs import make_ctx, make_target


def test_configs_and_remotes_written_like_cloud_init(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"rsyslog": {
        "configs": ["*.* /var/log/all.log", {"filename": "30-extra.conf",
                                               "content": "mail.* /var/log/m.log\n"},
                    {"content": ":programname, isequal, \"x\" stop"},
                    {"filename": "/etc/rsyslog.conf.d/abs.conf", "content": "# abs"}],
        "remotes": {"central": "10.0.0.9", "tcp6": "auth.* @@[fd00::5]:6514",
                    "named": "@logs.example.org:10514 # trailing comment", "off": None},
    }})
    rsyslog.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/etc/rsyslog.d/20-cloud-config.conf") == (
        "*.* /var/log/all.log\n"
        ":programname, isequal, \"x\" stop\n"
        "# begin remotes\n"
        "*.* @10.0.0.9 # central\n"
        "auth.* @@[fd00::5]:6514 # tcp6\n"
        "*.* @logs.example.org:10514 # named\n"
        "# end remotes\n")
    assert target.read_text("/etc/rsyslog.d/30-extra.conf") == "mail.* /var/log/m.log\n"
    assert target.read_text("/etc/rsyslog.conf.d/abs.conf") == "# abs\n"
    assert os.stat(tmp_path / "etc/rsyslog.d/30-extra.conf").st_mode & 0o777 == 0o644


def test_legacy_list_form_with_top_level_dir_and_filename(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"rsyslog": ["*.* @@10.1.1.1", {"content": "# two"}],
                            "rsyslog_dir": "/etc/legacy.d", "rsyslog_filename": "old.conf"})
    rsyslog.MODULE.handle(ctx)
    assert target.read_text("/etc/legacy.d/old.conf") == "*.* @@10.1.1.1\n# two\n"


def test_config_dir_and_filename_in_the_mapping(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"rsyslog": {"config_dir": "/etc/other.d",
                                        "config_filename": "99-mine.conf",
                                        "remotes": {"a": "1.2.3.4:514"}}})
    rsyslog.MODULE.handle(ctx)
    assert "*.* @1.2.3.4:514 # a" in target.read_text("/etc/other.d/99-mine.conf")


def test_bad_items_are_reported_and_the_rest_written(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.conf"
    (tmp_path / "etc/rsyslog.d").mkdir(parents=True)
    os.symlink(outside, tmp_path / "etc/rsyslog.d/link.conf")
    ctx = make_ctx(target, {"rsyslog": {
        "configs": [5, {"filename": "../../escape.conf", "content": "x"},
                    {"filename": "link.conf", "content": "# stays inside"}, "*.* /ok"],
        "remotes": {"inject": "*.* @h\n*.* /tmp/x", "port": "h:99999", "sel": "a b c",
                    "bad-host": "@bad_host!", "ok": "10.0.0.1"},
        "service_reload_command": 7,
    }})
    rsyslog.MODULE.handle(ctx)
    wheres = sorted(p.where for p in ctx.problems)
    assert wheres == ["rsyslog.configs[0]", "rsyslog.configs[1].filename",
                      "rsyslog.remotes.bad-host", "rsyslog.remotes.inject",
                      "rsyslog.remotes.port", "rsyslog.remotes.sel",
                      "rsyslog.service_reload_command"]
    text = target.read_text("/etc/rsyslog.d/20-cloud-config.conf")
    assert text == "*.* /ok\n# begin remotes\n*.* @10.0.0.1 # ok\n# end remotes\n"
    assert not outside.exists()  # the planted link was replaced, not followed
    assert target.read_text("/etc/rsyslog.d/link.conf") == "# stays inside\n"
    assert not (tmp_path.parent / "escape.conf").exists()


def test_nothing_to_do_is_a_note(tmp_path: Path) -> None:
    ctx = make_ctx(make_target(tmp_path), {"rsyslog": {"remotes": {"off": ""}}})
    rsyslog.MODULE.handle(ctx)
    assert [p.where for p in ctx.problems] == ["rsyslog"]
    assert not (tmp_path / "etc/rsyslog.d").exists()


@pytest.mark.parametrize(("text", "line"), [
    ("h", "*.* @h # n"),
    ("@@h:1", "*.* @@h:1 # n"),
    ("kern.* [::1]", "kern.* @[::1] # n"),
    ("*.* @192.0.2.1:514 # c", "*.* @192.0.2.1:514 # n"),
])
def test_remote_lines(text: str, line: str) -> None:
    assert str(rsyslog.parse_remote("n", text)) == line


@pytest.mark.parametrize("text", ["", "a b c", "*.* @", "x;y|z @h", "@h:0", "@[nothex]"])
def test_bad_remote_lines(text: str) -> None:
    with pytest.raises(LineGrammarError):
        rsyslog.parse_remote("n", text)
