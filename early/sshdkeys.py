"""The keys the initramfs SSH server accepts: the instance's own, from the seed cache.

Three sources, in this order, each key once: the meta-data ``public-keys`` the early
stage normalised into ``seed.json``; the default user's ``ssh_authorized_keys`` from the
cached user-data (the top-level key and ``system_info.default_user``; plain cloud-config,
gzip-compressed, or the cloud-config parts of a MIME multipart); and the fallback file
the image builder baked in (``bootseed-image build --initramfs-ssh-key``). The user-data
is read with the meta-data parser (simple YAML, then the bounded PyYAML loader where it
is importable), so a hostile seed is bounded here too.

Only lines that look like an OpenSSH public key (a known key type, then base64) are
kept; a line with ``authorized_keys`` options or anything else is reported and left out,
so nothing in a seed can give a key a forced command or an environment.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.contract.seedcache import SeedCacheError, read_seed_cache

KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
MAX_KEY_LINE = 16384
MAX_USER_DATA = 16 * 1024 * 1024
_COMMENT = re.compile(r"[\x20-\x7e]*\Z")
WHERE = "initramfs ssh keys"


@dataclass
class AuthorizedKeys:
    """The assembled ``authorized_keys`` lines and how many each source gave."""

    keys: list[str] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, source: str, candidates: list[str]) -> None:
        taken = 0
        for number, candidate in enumerate(candidates, 1):
            key = checked_key(candidate)
            if key is None:
                self.problems.append(Problem(f"{WHERE}: {source}",
                                             f"entry {number} is not an OpenSSH public key; "
                                             "left out", Level.WARNING))
            elif key not in self.keys:
                self.keys.append(key)
                taken += 1
        self.sources[source] = taken

    def text(self) -> str:
        return "".join(f"{key}\n" for key in self.keys)


def checked_key(candidate: object) -> str | None:
    """The key as one ``type base64 [comment]`` line, or None when it is not one."""
    if not isinstance(candidate, str) or len(candidate) > MAX_KEY_LINE:
        return None
    parts = candidate.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    # The blob starts with the key type again (a length-prefixed string).
    if blob[4:4 + len(parts[0])] != parts[0].encode():
        return None
    comment = parts[2] if len(parts) == 3 else ""
    if not _COMMENT.match(comment):
        return None
    return " ".join(parts)


def assemble(seed_dir: str | Path, fallback: str | Path | None) -> AuthorizedKeys:
    """Every key the server accepts, from the seed cache in ``seed_dir`` and the fallback."""
    found = AuthorizedKeys()
    try:
        seed = read_seed_cache(seed_dir)
    except SeedCacheError as exc:
        found.problems.append(Problem(WHERE, f"seed cache unusable: {exc}", Level.WARNING))
        seed = None
    if seed is not None:
        keys = seed.metadata.get("public-keys")
        found.add("meta-data public-keys", keys if isinstance(keys, list) else [])
        user_data = seed.payloads.get("user-data")
        if user_data:
            try:
                found.add("user-data ssh_authorized_keys", user_data_keys(user_data))
            except ValueError as exc:
                found.problems.append(Problem(f"{WHERE}: user-data", str(exc), Level.WARNING))
    if fallback is not None:
        try:
            text = Path(fallback).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = None
        except OSError as exc:
            found.problems.append(Problem(f"{WHERE}: {fallback}", exc.strerror or str(exc),
                                          Level.WARNING))
            text = None
        if text is not None:
            found.add("image fallback key", [line for line in text.splitlines()
                                             if line.strip() and not line.startswith("#")])
    return found


def user_data_keys(data: bytes) -> list[str]:
    """The default user's ``ssh_authorized_keys`` in user-data; ValueError when unreadable."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data)
    keys: list[str] = []
    for part in _cloud_config_parts(data):
        from bootseed.early.sources.metadata import MetadataError, parse_meta_data

        try:
            config = parse_meta_data(part)
        except (MetadataError, UnicodeDecodeError) as exc:
            raise ValueError(f"user-data cloud-config unreadable: {exc}") from None
        keys += _listed(config.get("ssh_authorized_keys"))
        system_info = config.get("system_info")
        if isinstance(system_info, dict) and isinstance(system_info.get("default_user"), dict):
            keys += _listed(system_info["default_user"].get("ssh_authorized_keys"))
    return keys


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _gunzip(data: bytes) -> bytes:
    import zlib

    decompressor = zlib.decompressobj(wbits=31)
    out = decompressor.decompress(data, MAX_USER_DATA)
    if decompressor.unconsumed_tail:
        raise ValueError(f"user-data larger than {MAX_USER_DATA} bytes once decompressed")
    return out


def _cloud_config_parts(data: bytes) -> list[bytes]:
    """The cloud-config documents in user-data: itself, or its MIME parts."""
    head = data.lstrip()[:256].lower()
    if head.startswith(b"#cloud-config"):
        return [data]
    if not (head.startswith(b"content-type:") or head.startswith(b"mime-version:")):
        return []
    import email
    import email.policy

    message = email.message_from_bytes(data, policy=email.policy.compat32)
    parts: list[bytes] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if part.get_content_type() == "text/cloud-config" or \
                payload.lstrip().startswith(b"#cloud-config"):
            parts.append(payload)
    return parts
