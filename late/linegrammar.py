"""What a value must look like to become part of a line-oriented system file.

One validator per file grammar: account names (passwd, group, shadow, gshadow
and sudoers), other colon-separated account fields, host names (/etc/hostname,
/etc/hosts), authorized_keys lines and /etc/fstab fields. Each raises
``LineGrammarError`` naming the place; the value is not quoted back when it may be a
secret.

A line break is anything ``str.splitlines`` splits on (``\\n``, ``\\r``, ``\\x0b``,
``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028, U+2029): some readers of these files
(sshd, Python tools, editors) treat each of them as a line end, so none may
reach a file that holds one record per line.
"""

from __future__ import annotations

import re

# passwd/group names as shadow-utils accepts them by default (plus a trailing '$' for
# Samba machine accounts); fullmatch, so no trailing newline slips past '$'.
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAX_HOSTNAME = 253


class LineGrammarError(ValueError):
    """A value that would break the line structure of a system file."""


def has_line_break(text: str) -> bool:
    return len((text + "x").splitlines()) > 1


def single_line(text: str, what: str) -> str:
    if has_line_break(text):
        raise LineGrammarError(f"{what} must not contain a line break")
    return text


def account_name(name: object, what: str = "name") -> str:
    """A user or group name for /etc/passwd, /etc/group, shadow files and sudoers."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.fullmatch(name) or name.isdigit():
        shown = repr(name) if isinstance(name, str) and not has_line_break(name) else "given"
        raise LineGrammarError(f"{what} {shown} is not a valid user or group name")
    return name


def account_field(value: str, what: str) -> str:
    """Any other field of a colon-separated account file (gecos, home, shell, hash)."""
    if ":" in value or has_line_break(value) or "\0" in value:
        raise LineGrammarError(f"{what} must not contain ':', a NUL or a line break")
    return value


def hostname(name: str, key: str) -> str:
    """A host name or FQDN for /etc/hostname and /etc/hosts (trailing dot dropped)."""
    labels = name.rstrip(".").split(".")
    if not name or len(name) > MAX_HOSTNAME or not all(_HOST_LABEL.fullmatch(p) for p in labels):
        shown = repr(name) if not has_line_break(name) else "value"
        raise LineGrammarError(f"{key}: {shown} is not a valid host name")
    return name.rstrip(".")


def authorized_key_part(text: str, what: str) -> str:
    """Options or comment of an authorized_keys line: one line, no NUL."""
    if has_line_break(text) or "\0" in text:
        raise LineGrammarError(f"{what} must not contain a line break or NUL")
    return text


def ip_address(value: object, what: str) -> str:
    """An IPv4 or IPv6 address (resolv.conf ``nameserver``, an NTP server by address)."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise LineGrammarError(f"{what} is not an IP address") from None


def host_or_address(value: object, what: str) -> str:
    """A host name or an IP address, for ``server``/``pool`` lines and the like."""
    if not isinstance(value, str):
        raise LineGrammarError(f"{what} must be a host name or an IP address")
    try:
        return ip_address(value, what)
    except LineGrammarError:
        return hostname(value, what)
def fstab_field(value: str, what: str) -> str:
    """One whitespace-separated field of an /etc/fstab line: not empty, no blank, no line
    break, no NUL, and not starting with '#' (which would comment out the rest)."""
    if not value or value.startswith("#") or "\0" in value or any(c.isspace() for c in value):
        shown = repr(value) if not has_line_break(value) else "value"
        raise LineGrammarError(f"{what}: {shown} is not a valid fstab field (empty, "
                               "blanks, '#' first or a line break)")
    return value


_SYSLOG_SELECTOR = re.compile(r"[A-Za-z0-9*.,;=!_-]+")


def syslog_selector(value: str, what: str) -> str:
    """A syslog selector (``*.*``, ``auth,authpriv.*``, ``kern.!=debug;mail.none``): one
    word of facility/priority characters, nothing that could end the rule."""
    if not _SYSLOG_SELECTOR.fullmatch(value):
        raise LineGrammarError(f"{what} is not a syslog selector (like *.* or auth.info)")
    return value
