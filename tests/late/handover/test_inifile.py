from __future__ import annotations

import pytest
from bootseed.late.handover.inifile import (
    NO_SECTION,
    IniValueError,
    Setting,
    merge,
    settings_from,
)

PUPPET_CONF = """# kept comment
[main]
ssldir = /var/lib/puppet/ssl

[agent]
server = old.example
"""


def test_settings_replace_in_place_and_new_sections_go_last() -> None:
    settings = settings_from({"agent": {"server": "puppet", "runinterval": 600},
                              "main": {"logdir": "/var/log/puppet"},
                              "user": {"noop": True}}, "puppet.conf")
    assert merge(PUPPET_CONF, settings) == (
        "# kept comment\n[main]\nssldir = /var/lib/puppet/ssl\n\nlogdir = /var/log/puppet\n"
        "[agent]\nserver = puppet\nruninterval = 600\n\n[user]\nnoop = true\n")


def test_sectionless_file_and_empty_file() -> None:
    settings = settings_from({NO_SECTION: {"securityprovider": "ssl", "main_collective":
                                           "mcollective"}}, "mcollective.conf")
    assert merge("securityprovider = psk\n# note\n", settings) == (
        "securityprovider = ssl\n# note\nmain_collective = mcollective\n")
    assert merge("", [Setting("agent", "server", "p")]) == "[agent]\nserver = p\n"


@pytest.mark.parametrize(("sections", "where"), [
    ({"agent": {"server": "a\nextra = 1"}}, "puppet.conf.agent.server"),
    ({"agent": {"bad\nkey": "x"}}, "puppet.conf.agent.bad\nkey"),
    ({"agent": {"k=v": "x"}}, "puppet.conf.agent.k=v"),
    ({"a]b": {"k": "v"}}, "puppet.conf.a]b"),
])
def test_a_value_cannot_write_a_line_of_its_own(sections: dict, where: str) -> None:
    with pytest.raises(IniValueError) as caught:
        settings_from(sections, "puppet.conf")
    assert str(caught.value).startswith(where)
