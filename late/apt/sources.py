"""apt source lists: the default template, mirrors, variables and disabled suites.

Pure text in, text out, so every form is tested without a system. Both source
formats are handled: one-line (``deb URI SUITE COMPONENTS``, in
``sources.list`` and ``*.list``) and deb822 (``Types:``/``URIs:``/``Suites:``
stanzas, in ``*.sources``; Debian 12's ``debian.sources`` is one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

DEFAULT_PRIMARY = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
DISABLED_MARK = "# suite disabled by bootseed:"
_NAMED_SUITES = {
    "release": "$RELEASE",
    "updates": "$RELEASE-updates",
    "security": "$RELEASE-security",
    "backports": "$RELEASE-backports",
    "proposed": "$RELEASE-proposed",
}
_VARIABLE_RE = re.compile(r"\$(?:\{(?P<braced>[A-Z_]+)\}|(?P<plain>[A-Z_]+))")
_JINJA_HEADER = "## template:jinja"
_JINJA_VAR_RE = re.compile(r"\{\{\s*(?P<name>[a-z_]+)\s*\}\}")
# cloud-init's template variables, lower-case in its jinja templates.
_JINJA_NAMES = {"mirror": "MIRROR", "primary": "PRIMARY", "security": "SECURITY",
                "codename": "RELEASE", "release": "RELEASE"}

DEFAULT_ONE_LINE_TEMPLATE = """\
# Written by bootseed from the cloud-config 'apt' settings on this instance's
# first boot; set apt: {preserve_sources_list: true} to keep your own.
deb $PRIMARY $RELEASE main
deb $PRIMARY $RELEASE-updates main
deb $SECURITY $RELEASE-security main
"""

DEFAULT_DEB822_TEMPLATE = """\
# Written by bootseed from the cloud-config 'apt' settings on this instance's
# first boot; set apt: {preserve_sources_list: true} to keep your own.
Types: deb
URIs: $PRIMARY
Suites: $RELEASE $RELEASE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $RELEASE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


class TemplateError(ValueError):
    """A template or source entry names a variable bootseed does not know."""


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Replace ``$NAME`` / ``${NAME}`` (and ``{{ name }}`` in a ``## template:jinja``
    text) with ``variables``; an unknown upper-case variable is an error."""
    if text.lstrip().startswith(_JINJA_HEADER):
        text = text.split("\n", 1)[1] if "\n" in text else ""

        def jinja(match: re.Match[str]) -> str:
            name = _JINJA_NAMES.get(match.group("name"))
            if name is None or name not in variables:
                raise TemplateError(f"unknown template variable {{{{ {match.group('name')} }}}}")
            return variables[name]

        text = _JINJA_VAR_RE.sub(jinja, text)

    def plain(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in variables:
            raise TemplateError(f"unknown variable ${name}")
        return variables[name]

    return _VARIABLE_RE.sub(plain, text)


def suite_names(disable: list[str], release: str) -> set[str]:
    """``disable_suites`` entries as the suite names that appear in sources."""
    names: set[str] = set()
    for entry in disable:
        template = _NAMED_SUITES.get(entry, entry)
        names.add(substitute(template, {"RELEASE": release}))
    return names


def is_deb822(text: str) -> bool:
    return any(re.match(r"^(Types|URIs|Suites)\s*:", line, re.IGNORECASE)
               for line in text.splitlines())


def disable_suites(text: str, suites: set[str]) -> str:
    """Turn off ``suites`` in a source text of either format."""
    if not suites:
        return text
    if is_deb822(text):
        return _disable_deb822(text, suites)
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        fields = _one_line_fields(line)
        if fields is not None and fields[2] in suites:
            out.append(f"{DISABLED_MARK} {line}")
        else:
            out.append(line)
    return "".join(out)


def _one_line_fields(line: str) -> list[str] | None:
    """``[type, uri, suite, ...]`` of an active one-line entry (options dropped)."""
    body = line.split("#", 1)[0].strip()
    if not body.startswith(("deb ", "deb-src ", "deb\t", "deb-src\t")):
        return None
    body = re.sub(r"\[[^\]]*\]", " ", body)
    fields = body.split()
    return fields if len(fields) >= 3 else None


def _disable_deb822(text: str, suites: set[str]) -> str:
    stanzas = re.split(r"\n[ \t]*\n", text.rstrip("\n"))
    out: list[str] = []
    for stanza in stanzas:
        lines = stanza.split("\n")
        for index, line in enumerate(lines):
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "suites":
                kept = [s for s in value.split() if s not in suites]
                if kept:
                    lines[index] = f"{key}: {' '.join(kept)}"
                else:
                    lines[index] = f"{DISABLED_MARK} {line.strip()}"
                    lines.append("Enabled: no")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def add_signed_by(source: str, keyfile: str, uri: str | None = None) -> str:
    """``source`` trusting ``keyfile`` (only the entries for ``uri``, when given);
    an entry that names a key already is kept as it is."""
    if is_deb822(source):
        stanzas = re.split(r"\n[ \t]*\n", source.rstrip("\n"))
        out = []
        for stanza in stanzas:
            has_key = re.search(r"^Signed-By\s*:", stanza, re.IGNORECASE | re.MULTILINE)
            uris = re.search(r"^URIs\s*:(.*)$", stanza, re.IGNORECASE | re.MULTILINE)
            wanted = uri is None or (uris is not None and uri in uris.group(1).split())
            if has_key or not wanted:
                out.append(stanza)
            else:
                out.append(f"{stanza}\nSigned-By: {keyfile}")
        return "\n\n".join(out) + "\n"
    lines = []
    for line in source.splitlines():
        fields = _one_line_fields(line)
        if fields is None or "signed-by=" in line or (uri is not None and fields[1] != uri):
            lines.append(line)
            continue
        kind, rest = line.strip().split(None, 1)
        if rest.startswith("["):
            options, _, tail = rest[1:].partition("]")
            lines.append(f"{kind} [{options.strip()} signed-by={keyfile}] {tail.strip()}")
        else:
            lines.append(f"{kind} [signed-by={keyfile}] {rest}")
    return "\n".join(lines) + "\n"
