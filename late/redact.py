"""Keep secrets out of logs and world-readable files.

Two mechanisms: values under sensitive-looking keys (passwords, private keys,
tokens) are replaced wholesale in data, and every secret string learned so far
(from the config, or handed in by a module through ``add_secret``) is cut out
of any text before it is logged or written where others can read it.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "<redacted>"

# Words of a key name (split at '_', '-', '.' and case changes) that mark its value as
# secret. Whole words, not substrings: ``chpasswd`` holds user names as well as
# passwords (its passwords are picked out by ``_chpasswd_secrets``), and a key that
# merely contains "passw" somewhere says nothing about its value.
_SENSITIVE_WORDS = frozenset({
    "passwd", "password", "passwords", "passphrase", "secret", "secrets", "token", "tokens",
    "private", "credential",
    "credentials", "apikey",
})
_SENSITIVE_PAIRS = (("api", "key"), ("access", "key"), ("secret", "key"))
# Keys whose names do not say it: puppet's challengePassword and pre-shared key by
# their OIDs (the CSR token of a fleet), and chef's validation key (a private key).
_SENSITIVE_EXACT = frozenset({
    "1.2.840.113549.1.9.7", "pp_preshared_key", "1.3.6.1.4.1.34380.1.1.4",
    "validation_key", "validation_cert",
})
# Keys that look sensitive by name but hold harmless flags.
_HARMLESS_KEYS = frozenset({"lock_passwd", "ssh_pwauth", "expire"})
# Below this a "secret" would redact ordinary words; such values are still
# replaced under sensitive keys, just not searched for in free text.
_MIN_SECRET = 4
_WORD_SPLIT = re.compile(r"[-_.\s]+|(?<=[a-z])(?=[A-Z])")


def is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str) or key in _HARMLESS_KEYS:
        return False
    if key in _SENSITIVE_EXACT:
        return True
    words = [w.lower() for w in _WORD_SPLIT.split(key) if w]
    if _SENSITIVE_WORDS.intersection(words):
        return True
    return any(pair in _SENSITIVE_PAIRS for pair in itertools.pairwise(words))


class Redactor:
    """Thread-safe set of secrets plus the rules that hide them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Learn a secret. Multi-line secrets (keys) are also learned line by line, so a
        log line quoting one line of a private key is caught too."""
        if not isinstance(secret, str):
            return
        pieces = {secret.strip(), *(line.strip() for line in secret.splitlines())}
        new = {p for p in pieces if len(p) >= _MIN_SECRET and not p.startswith("-----")}
        with self._lock:
            if new - self._secrets:
                self._secrets |= new
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def learn_from_config(self, cfg: object) -> None:
        """Collect every secret a cloud-config holds (sensitive keys, ``chpasswd``)."""
        for value in _sensitive_values(cfg):
            self.add(value)

    def text(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)

    def data(self, obj: Any) -> Any:
        """A copy of ``obj`` with sensitive keys replaced and secrets cut from strings."""
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                if is_sensitive_key(key) and _has_text(value):
                    out[key] = REDACTED
                else:
                    out[key] = self.data(value)
            return out
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj


def _has_text(value: object) -> bool:
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True  # an integer password is still a password
    if isinstance(value, dict):
        return any(_has_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_text(v) for v in value)
    return False


def _strings(obj: object) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        yield str(obj)
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _strings(value)


def _sensitive_values(obj: object) -> Iterable[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "chpasswd":
                yield from _chpasswd_secrets(value)
            if is_sensitive_key(key):
                yield from _strings(value)
            else:
                yield from _sensitive_values(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _sensitive_values(value)


def _chpasswd_secrets(value: object) -> Iterable[str]:
    """``chpasswd.list`` holds ``user:password`` lines (a string or a list)."""
    if not isinstance(value, dict):
        return
    lines = value.get("list")
    if isinstance(lines, str):
        lines = lines.splitlines()
    if isinstance(lines, list):
        for line in lines:
            if isinstance(line, str) and ":" in line:
                yield line.split(":", 1)[1]
    for user in value.get("users") or []:
        if isinstance(user, dict) and isinstance(user.get("password"), str):
            yield user["password"]


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message through the redactor (args included)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redactor.text(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        # The formatter would re-render exc_info; exc_text now carries it, redacted.
        record.exc_info = None
        return True
