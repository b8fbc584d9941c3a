"""OpenPGP public keys for apt: read armour, check fingerprints, fetch by key id.

A key given inline (``key:``) or fetched from a keyserver (``keyid:`` +
``keyserver:``) is stored de-armoured as its own file under
``/etc/apt/keyrings`` and named by the source's ``signed-by`` option, so it
vouches for that source only, never for the whole system (no
``trusted.gpg``). A fetched key must carry the fingerprint the ``keyid``
asked for; a keyserver answering another key is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
from dataclasses import dataclass

KEYRING_DIR = "/etc/apt/keyrings"
DEFAULT_KEYSERVER = "keyserver.ubuntu.com"
HKP_PORT = 11371
MAX_KEY_BYTES = 256 * 1024
_ARMOR_RE = re.compile(
    r"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(?P<body>.*?)-----END PGP PUBLIC KEY BLOCK-----",
    re.DOTALL,
)
_KEYID_RE = re.compile(r"^(?:0x)?([0-9A-Fa-f]{8}|[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})$")
_PUBLIC_KEY_TAGS = (6, 14)  # primary key, subkey


class AptKeyError(ValueError):
    """A key that cannot be used; the message says why (never the key material)."""


@dataclass(frozen=True)
class PublicKey:
    binary: bytes
    fingerprints: tuple[str, ...]  # v4 fingerprints, upper-case hex, primary first

    def matches(self, keyid: str) -> bool:
        wanted = normalise_keyid(keyid)
        return any(fpr.endswith(wanted) for fpr in self.fingerprints)


def normalise_keyid(text: str) -> str:
    """``0xABCD...`` / ``abcd...`` / a fingerprint with spaces -> upper-case hex."""
    compact = text.replace(" ", "")
    match = _KEYID_RE.match(compact)
    if match is None:
        raise AptKeyError("keyid must be 8, 16 or 40 hex digits (optionally 0x-prefixed)")
    return match.group(1).upper()


def read_public_key(text: str) -> PublicKey:
    """The first armoured public key block in ``text``, de-armoured and checked."""
    match = _ARMOR_RE.search(text)
    if match is None:
        raise AptKeyError("no '-----BEGIN PGP PUBLIC KEY BLOCK-----' armour found")
    lines = match.group("body").splitlines()
    # Armour headers ("Comment: ...") end at the first blank line, if any.
    if any(not line.strip() for line in lines):
        lines = lines[[not line.strip() for line in lines].index(True) + 1:]
    data_lines = [line.strip() for line in lines if line.strip() and not line.startswith("=")]
    try:
        binary = base64.b64decode("".join(data_lines), validate=True)
    except binascii.Error as exc:
        raise AptKeyError(f"the armoured key is not valid base64 ({exc})") from None
    if len(binary) > MAX_KEY_BYTES:
        raise AptKeyError(f"key larger than {MAX_KEY_BYTES} bytes")
    fingerprints = tuple(_v4_fingerprints(binary))
    if not fingerprints:
        raise AptKeyError("no OpenPGP v4 public key packet in the armoured block")
    return PublicKey(binary, fingerprints)


def _v4_fingerprints(data: bytes) -> list[str]:
    found: list[str] = []
    pos = 0
    while pos < len(data):
        tag, body_start, body_len = _packet_header(data, pos)
        body = data[body_start:body_start + body_len]
        if len(body) != body_len:
            raise AptKeyError("truncated OpenPGP packet")
        if tag in _PUBLIC_KEY_TAGS and body[:1] == b"\x04":
            digest = hashlib.sha1(b"\x99" + body_len.to_bytes(2, "big") + body,
                                  usedforsecurity=False)
            found.append(digest.hexdigest().upper())
        pos = body_start + body_len
    return found


def _packet_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, body offset, body length) of the packet at ``pos`` (RFC 4880 4.2)."""
    first = data[pos]
    if not first & 0x80:
        raise AptKeyError("not an OpenPGP packet stream")
    if first & 0x40:  # new format
        tag = first & 0x3F
        octet = data[pos + 1] if pos + 1 < len(data) else 0
        if octet < 192:
            return tag, pos + 2, octet
        if octet < 224:
            return tag, pos + 3, ((octet - 192) << 8) + data[pos + 2] + 192
        if octet == 255:
            return tag, pos + 6, int.from_bytes(data[pos + 2:pos + 6], "big")
        raise AptKeyError("partial-length packets do not occur in public keys")
    tag = (first >> 2) & 0x0F
    kind = first & 0x03
    if kind == 3:
        raise AptKeyError("indeterminate-length packets do not occur in public keys")
    size = 1 << kind
    return tag, pos + 1 + size, int.from_bytes(data[pos + 1:pos + 1 + size], "big")


def keyserver_url(keyserver: str | None, keyid: str) -> str:
    """The HKP lookup URL for ``keyid`` on ``keyserver`` (cloud-init's spellings).

    A bare host name means ``hkps://`` (HTTPS on 443), ``hkp://`` is plain HTTP
    on 11371, ``http(s)://`` is taken as it is.
    """
    server = (keyserver or DEFAULT_KEYSERVER).strip()
    if "://" not in server:
        server = f"hkps://{server}"
    parts = urllib.parse.urlsplit(server)
    if parts.scheme not in ("hkp", "hkps", "http", "https") or not parts.hostname:
        raise AptKeyError("keyserver must be a host name or an hkp://, hkps://, http:// or "
                        "https:// URL")
    scheme = {"hkp": "http", "hkps": "https"}.get(parts.scheme, parts.scheme)
    default_port = {"hkp": HKP_PORT, "hkps": 443, "http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = parts.port or default_port
    query = urllib.parse.urlencode({"op": "get", "options": "mr",
                                    "search": "0x" + normalise_keyid(keyid)})
    return f"{scheme}://{host}:{port}/pks/lookup?{query}"


def fetch_key(keyid: str, keyserver: str | None, *, timeout: float = 30.0) -> PublicKey:
    """Fetch ``keyid`` over HKP and check that the answer is that key."""
    from bootseed.early import http
    from bootseed.early.budget import Budget

    url = keyserver_url(keyserver, keyid)
    try:
        resp = http.fetch(url, budget=Budget(timeout), timeout=min(10.0, timeout),
                          max_bytes=MAX_KEY_BYTES)
    except http.FetchError as exc:
        raise AptKeyError(f"keyserver {keyserver or DEFAULT_KEYSERVER} unreachable: "
                        f"{exc.message}") from None
    if resp.status != 200:
        raise AptKeyError(f"keyserver {keyserver or DEFAULT_KEYSERVER} answered HTTP "
                        f"{resp.status} for key {normalise_keyid(keyid)}")
    key = read_public_key(resp.body.decode("ascii", "replace"))
    if not key.matches(keyid):
        raise AptKeyError(f"keyserver answered a key whose fingerprint does not end in "
                        f"{normalise_keyid(keyid)}; refused")
    return key
