from __future__ import annotations

import pytest
from bootseed.late.apt import sources
from bootseed.late.apt.sources import TemplateError

VARS = {"MIRROR": "http://m.example/debian", "PRIMARY": "http://m.example/debian",
        "SECURITY": "http://s.example/debian-security", "RELEASE": "bookworm"}


def test_dollar_and_braced_variables() -> None:
    text = sources.substitute("deb $MIRROR ${RELEASE}-updates main\n", VARS)
    assert text == "deb http://m.example/debian bookworm-updates main\n"


def test_jinja_style_template_with_header() -> None:
    template = "## template:jinja\ndeb {{mirror}} {{ codename }} main\ndeb {{security}} x\n"
    assert sources.substitute(template, VARS) == (
        "deb http://m.example/debian bookworm main\ndeb http://s.example/debian-security x\n")


@pytest.mark.parametrize("text", ["deb $NOPE x main\n", "## template:jinja\n{{ nope }}\n"])
def test_unknown_variables_are_errors(text: str) -> None:
    with pytest.raises(TemplateError, match=r"nope|NOPE"):
        sources.substitute(text, VARS)


def test_named_and_literal_suites() -> None:
    assert sources.suite_names(["updates", "security", "backports", "proposed", "release",
                                "$RELEASE-custom", "sid"], "bookworm") == {
        "bookworm-updates", "bookworm-security", "bookworm-backports", "bookworm-proposed",
        "bookworm", "bookworm-custom", "sid"}


def test_disable_suites_one_line_keeps_others_and_options() -> None:
    text = ("deb http://m/debian bookworm main\n"
            "deb [arch=amd64] http://m/debian bookworm-updates main\n"
            "# deb http://m/debian bookworm-backports main\n"
            "deb-src http://m/debian bookworm-updates main\n")
    out = sources.disable_suites(text, {"bookworm-updates"})
    lines = out.splitlines()
    assert lines[0] == "deb http://m/debian bookworm main"
    assert lines[1].startswith(sources.DISABLED_MARK) and "arch=amd64" in lines[1]
    assert lines[2] == "# deb http://m/debian bookworm-backports main"
    assert lines[3].startswith(sources.DISABLED_MARK)


def test_disable_suites_deb822_drops_suite_or_disables_stanza() -> None:
    text = ("Types: deb\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\n"
            "Components: main\n\nTypes: deb\nURIs: http://s/\nSuites: bookworm-security\n"
            "Components: main\n")
    out = sources.disable_suites(text, {"bookworm-updates", "bookworm-security"})
    first, second = out.split("\n\n")
    assert "Suites: bookworm\n" in first + "\n" and "Enabled" not in first
    assert "Enabled: no" in second and sources.DISABLED_MARK in second


def test_signed_by_is_added_once_in_both_formats() -> None:
    one = sources.add_signed_by("deb http://r/ lab main\ndeb [arch=amd64] http://r/ x main\n",
                                "/etc/apt/keyrings/lab.gpg")
    assert one.splitlines() == [
        "deb [signed-by=/etc/apt/keyrings/lab.gpg] http://r/ lab main",
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/lab.gpg] http://r/ x main"]
    assert sources.add_signed_by(one, "/other.gpg") == one
    deb822 = sources.add_signed_by("Types: deb\nURIs: http://r/\nSuites: lab\n", "/k.gpg")
    assert deb822.endswith("Signed-By: /k.gpg\n")


def test_signed_by_only_for_one_mirror() -> None:
    text = "deb http://a/ x main\ndeb http://b/ x-security main\n"
    assert sources.add_signed_by(text, "/k.gpg", uri="http://b/").splitlines() == [
        "deb http://a/ x main", "deb [signed-by=/k.gpg] http://b/ x-security main"]


def test_default_templates_render() -> None:
    one = sources.substitute(sources.DEFAULT_ONE_LINE_TEMPLATE, VARS)
    assert "deb http://s.example/debian-security bookworm-security main" in one
    assert not sources.is_deb822(one)
    deb822 = sources.substitute(sources.DEFAULT_DEB822_TEMPLATE, VARS)
    assert sources.is_deb822(deb822) and "Suites: bookworm bookworm-updates" in deb822
