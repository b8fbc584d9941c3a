"""SSH host keys: generate them in OpenSSH format, derive public halves, fingerprint them.

Fingerprints follow ``ssh-keygen -l``: ``<bits> SHA256:<base64 of the blob's
SHA-256, unpadded> <comment> (<TYPE>)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Type-checking only: PrivateKeyTypes exists from cryptography 40, bookworm ships 38.
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")
RSA_BITS = 3072  # ssh-keygen's default
# Seconds under an emulated CPU (ed25519 and ECDSA: milliseconds): made beside the boot.
SLOW_KEY_TYPES = frozenset({"rsa"})
SSH_DIR = "/etc/ssh"

_TYPE_LABELS = {
    "ssh-rsa": "RSA",
    "ssh-dss": "DSA",
    "ssh-ed25519": "ED25519",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
    "sk-ssh-ed25519@openssh.com": "ED25519-SK",
}


class SSHKeyError(ValueError):
    """Key material that cannot be parsed or used."""


def private_path(keytype: str) -> str:
    return f"{SSH_DIR}/ssh_host_{keytype}_key"


def public_path(keytype: str) -> str:
    return f"{SSH_DIR}/ssh_host_{keytype}_key.pub"


def certificate_path(keytype: str) -> str:
    return f"{SSH_DIR}/ssh_host_{keytype}_key-cert.pub"


@dataclass(frozen=True)
class HostKey:
    keytype: str
    private_pem: bytes
    public_line: str  # "ssh-ed25519 AAAA... comment", no newline


def generate_host_key(keytype: str, comment: str) -> HostKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if keytype == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif keytype == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    elif keytype == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise SSHKeyError(
            f"cannot generate host key type {keytype!r} (supported: {', '.join(HOST_KEY_TYPES)})"
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return HostKey(keytype, pem, f"{public.decode('ascii')} {comment}".rstrip())


def generate_host_keys(keytypes: Sequence[str], comment: str) -> list[HostKey | SSHKeyError]:
    """One key per type, in the order asked, made at the same time: the library generates
    outside the GIL, so with more than one CPU ed25519 and ECDSA cost nothing beside RSA,
    and RSA's seconds overlap each other's. An unsupported type's place holds its error."""

    def make(keytype: str) -> HostKey | SSHKeyError:
        try:
            return generate_host_key(keytype, comment)
        except SSHKeyError as exc:
            return exc

    if len(keytypes) <= 1:
        return [make(keytype) for keytype in keytypes]
    from concurrent.futures import ThreadPoolExecutor  # only when there are keys to make

    with ThreadPoolExecutor(max_workers=len(keytypes), thread_name_prefix="hostkey") as pool:
        return list(pool.map(make, keytypes))


def public_from_private(private_text: str | bytes, comment: str = "") -> str:
    """The ``.pub`` line of an OpenSSH or PEM private key (unencrypted)."""
    from cryptography.hazmat.primitives import serialization

    data = private_text.encode("utf-8") if isinstance(private_text, str) else private_text
    key: PrivateKeyTypes
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise SSHKeyError(f"not a usable unencrypted private key: {exc}") from None
    return f"{public.decode('ascii')} {comment}".rstrip()


@dataclass(frozen=True)
class Fingerprint:
    bits: int
    sha256: str  # "SHA256:..."
    comment: str
    label: str  # "ED25519", "RSA", ...
    keytype: str  # "ssh-ed25519", ...

    def line(self) -> str:
        return f"{self.bits} {self.sha256} {self.comment or 'no comment'} ({self.label})"


def _split_public(line: str) -> tuple[str, bytes, str]:
    words = line.strip().split(None, 2)
    if len(words) < 2:
        raise SSHKeyError(f"not an SSH public key: {line[:40]!r}")
    try:
        blob = base64.b64decode(words[1], validate=True)
    except (binascii.Error, ValueError):
        raise SSHKeyError(f"bad base64 in SSH public key: {line[:40]!r}") from None
    return words[0], blob, words[2] if len(words) > 2 else ""


def _blob_strings(blob: bytes, count: int) -> list[bytes]:
    """The first ``count`` SSH wire-format strings (uint32 length + bytes) of ``blob``."""
    out: list[bytes] = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(blob):
            raise SSHKeyError("truncated SSH public key blob")
        (length,) = struct.unpack_from(">I", blob, offset)
        offset += 4
        if offset + length > len(blob):
            raise SSHKeyError("truncated SSH public key blob")
        out.append(blob[offset : offset + length])
        offset += length
    if offset != len(blob):
        raise SSHKeyError("trailing data in SSH public key blob")
    return out


def _mpint_bits(value: bytes) -> int:
    if value[:1] and value[0] & 0x80:
        raise SSHKeyError("negative number in SSH public key blob")
    return int.from_bytes(value, "big").bit_length()


def _key_bits(keytype: str, blob: bytes, line: str) -> int:
    if keytype in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        return 256
    if keytype.startswith(("ecdsa-sha2-nistp", "sk-ecdsa-sha2-nistp")):
        return int(keytype.split("nistp")[1].split("@")[0])
    # RSA and DSA from the blob itself, as ssh-keygen -l counts: the modulus
    # (string "ssh-rsa", mpint e, mpint n) or the prime p (string "ssh-dss",
    # mpint p, q, g, y). No cryptography import on the boot path.
    wire_fields = {"ssh-rsa": 3, "ssh-dss": 5}.get(keytype)
    if wire_fields is not None:
        try:
            fields = _blob_strings(blob, wire_fields)
        except SSHKeyError as exc:
            raise SSHKeyError(f"cannot read {keytype} public key: {exc}") from None
        if fields[0] != keytype.encode("ascii"):
            raise SSHKeyError(f"cannot read {keytype} public key: the blob says "
                              f"{fields[0][:40]!r}")
        number = fields[2] if keytype == "ssh-rsa" else fields[1]
        bits = _mpint_bits(number)
        if bits == 0:
            raise SSHKeyError(f"cannot tell the size of a {keytype} key")
        return bits
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_ssh_public_key(line.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise SSHKeyError(f"cannot read {keytype} public key: {exc}") from None
    size = getattr(key, "key_size", None)
    if not isinstance(size, int):
        raise SSHKeyError(f"cannot tell the size of a {keytype} key")
    return size


def sha256_fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def fingerprint(public_line: str) -> Fingerprint:
    keytype, blob, comment = _split_public(public_line)
    return Fingerprint(
        bits=_key_bits(keytype, blob, public_line),
        sha256=sha256_fingerprint(blob),
        comment=comment,
        label=_TYPE_LABELS.get(keytype, keytype.upper()),
        keytype=keytype,
    )


def hex_fingerprint(blob_b64: str, hash_name: str = "sha256") -> str:
    """Colon-separated hex digest of a key blob (the ``authkey_hash`` style)."""
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        digest = hashlib.new(hash_name, blob).hexdigest()
    except (binascii.Error, ValueError) as exc:
        raise SSHKeyError(f"cannot fingerprint key with {hash_name}: {exc}") from None
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
