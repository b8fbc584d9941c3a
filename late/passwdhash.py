"""SHA-512 crypt (``$6$``) password hashes, as glibc's crypt(3) and /etc/shadow expect.

Written out from the published SHA-crypt algorithm so the late agent needs neither
the deprecated ``crypt`` module (gone in Python 3.13) nor an ``openssl`` binary.
"""

from __future__ import annotations

import hashlib
import secrets

_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DEFAULT_ROUNDS = 5000
_MIN_ROUNDS = 1000
_MAX_ROUNDS = 999_999_999
# The byte order in which the final digest is spread over the 86 output characters.
_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def _b64(b2: int, b1: int, b0: int, count: int) -> str:
    word = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(count):
        out.append(_ALPHABET[word & 0x3F])
        word >>= 6
    return "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha512_crypt(password: str, salt: str | None = None, rounds: int | None = None) -> str:
    """The ``$6$`` hash of ``password``; a random 16-character salt unless given."""
    if salt is None:
        salt = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    salt_b = salt.encode("utf-8")[:16]
    pw = password.encode("utf-8")
    n_rounds = _DEFAULT_ROUNDS if rounds is None else max(_MIN_ROUNDS, min(rounds, _MAX_ROUNDS))

    alt = hashlib.sha512(pw + salt_b + pw).digest()
    ctx = hashlib.sha512(pw + salt_b)
    ctx.update(_repeat(alt, len(pw)))
    i = len(pw)
    while i:
        ctx.update(alt if i & 1 else pw)
        i >>= 1
    digest = ctx.digest()

    p_seq = _repeat(hashlib.sha512(pw * len(pw)).digest(), len(pw))
    s_seq = _repeat(hashlib.sha512(salt_b * (16 + digest[0])).digest(), len(salt_b))

    for r in range(n_rounds):
        step = hashlib.sha512(p_seq if r & 1 else digest)
        if r % 3:
            step.update(s_seq)
        if r % 7:
            step.update(p_seq)
        step.update(digest if r & 1 else p_seq)
        digest = step.digest()

    encoded = "".join(_b64(digest[a], digest[b], digest[c], 4) for a, b, c in _ORDER)
    encoded += _b64(0, 0, digest[63], 2)
    prefix = "$6$" if rounds is None else f"$6$rounds={n_rounds}$"
    return f"{prefix}{salt_b.decode('utf-8', 'replace')}${encoded}"


def matches(password: str, hashed: str) -> bool:
    """Whether ``hashed`` (a ``$6$`` hash, lock marks allowed) is a hash of ``password``."""
    body = hashed.lstrip("!")
    parts = body.split("$")
    if len(parts) < 4 or parts[1] != "6":
        return False
    rounds = None
    if parts[2].startswith("rounds="):
        if len(parts) < 5 or not parts[2][7:].isdigit():
            return False
        rounds = int(parts[2][7:])
        salt = parts[3]
    else:
        salt = parts[2]
    return secrets.compare_digest(sha512_crypt(password, salt, rounds), body)
