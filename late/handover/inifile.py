"""Merge settings into an INI-style file (``puppet.conf``, mcollective's ``server.cfg``).

The file's other lines (comments, settings not named, other sections) are
kept as they are; a named setting is replaced in place, or added at the end
of its section, and a missing section is added at the end. Keys and values
are single lines: a newline in either would let a value write a setting of
its own, so they are refused with the place named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The settings before any [section] header (mcollective's server.cfg has only these).
NO_SECTION = ""
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_SETTING = re.compile(r"^\s*(?P<key>[^=#;\s][^=]*?)\s*=")


class IniValueError(ValueError):
    """A key or value that cannot be one line of the file."""


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    value: str


def render_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_line(text: str, where: str) -> str:
    if "\n" in text or "\r" in text or "\0" in text:
        raise IniValueError(f"{where}: must be a single line")
    return text


def settings_from(sections: Mapping[str, Mapping[str, object]], where: str) -> list[Setting]:
    """``{section: {key: value}}`` as checked settings (``where`` names the config key)."""
    out = []
    for section, values in sections.items():
        check_line(section, f"{where}.{section}")
        if "]" in section or "[" in section:
            raise IniValueError(f"{where}.{section}: a section name cannot hold brackets")
        for key, value in values.items():
            place = f"{where}.{section}.{key}" if section else f"{where}.{key}"
            check_line(str(key), place)
            if "=" in str(key) or not str(key).strip():
                raise IniValueError(f"{place}: not a setting name")
            out.append(Setting(section, str(key).strip(),
                               check_line(render_value(value), place)))
    return out


def merge(text: str, settings: list[Setting]) -> str:
    """``text`` with ``settings`` applied; the result ends with a newline."""
    lines = text.splitlines()
    pending = {(s.section, s.key): s for s in settings}
    out: list[str] = []
    section = NO_SECTION

    def flush(name: str) -> None:
        for (sec, key), setting in list(pending.items()):
            if sec == name:
                out.append(f"{key} = {setting.value}")
                del pending[(sec, key)]

    for line in lines:
        header = _SECTION.match(line)
        if header:
            flush(section)
            section = header.group("name").strip()
            out.append(line)
            continue
        found = _SETTING.match(line)
        if found and (section, found.group("key").strip()) in pending:
            setting = pending.pop((section, found.group("key").strip()))
            out.append(f"{setting.key} = {setting.value}")
            continue
        out.append(line)
    flush(section)
    for name in dict.fromkeys(sec for sec, _ in pending):
        if out and out[-1].strip():
            out.append("")
        if name:
            out.append(f"[{name}]")
        flush(name)
    return "\n".join(out) + "\n"
