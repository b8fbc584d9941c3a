"""OVF environment on an ISO (the "ISO transport"): ``ovf-env.xml`` properties.

Recognised properties: ``instance-id``, ``hostname`` / ``local-hostname``,
``seedfrom`` (a NoCloud URL whose files this disc then overrides),
``public-keys``, ``user-data`` (base64, or the raw text when it is not valid
base64) and ``password``. The password is kept under
``metadata["sensitive"]`` so nothing world-readable ever shows it.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from bootseed.contract.cmdline import SeedParams
from bootseed.contract.seedcache import Seed
from bootseed.early.sources import nocloud
from bootseed.early.sources.base import Context, SourceError, make_seed
from bootseed.early.sources.metadata import normalise

SOURCE = "ovf"
ENV_NAMES = ("ovf-env.xml", "ovf_env.xml")
DEFAULT_INSTANCE_ID = "iid-ovf"
MAX_XML_BYTES = 1024 * 1024


def find_env_file(root: Path) -> Path | None:
    """``ovf-env.xml`` in any case, or ``ovf_env.xml`` as plain ISO9660 names it."""
    try:
        for entry in sorted(root.iterdir()):
            if entry.name.lower().rstrip(".;1") in ENV_NAMES and entry.is_file():
                return entry
    except OSError:
        return None
    return None


class _Refused(Exception):
    pass


def parse_properties(data: bytes, where: str) -> dict[str, str]:
    """``key -> value`` from every ``Property`` element, namespaced or not.

    The parser itself refuses any document type declaration (and so every
    entity declaration): entity expansion is the classic way to blow up an XML
    parser, and a check on the raw bytes would miss a UTF-16 document.
    """
    if len(data) > MAX_XML_BYTES:
        raise SourceError(where, f"{len(data)} bytes, limit {MAX_XML_BYTES}")
    # Only when a disc carries an OVF environment.
    from xml.parsers import expat

    props: dict[str, str] = {}

    def refuse(*_args: object) -> None:
        raise _Refused

    def start(name: str, attrs: dict[str, str]) -> None:
        if _local(name) != "Property":
            return
        plain = {_local(key): value for key, value in attrs.items()}
        if "key" in plain:
            props[plain["key"]] = plain.get("value", "")

    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except _Refused:
        raise SourceError(where, "DOCTYPE/ENTITY declarations are not accepted") from None
    except expat.ExpatError as exc:
        raise SourceError(
            where, f"line {exc.lineno} column {exc.offset}: not well-formed XML"
        ) from exc
    except (ValueError, LookupError) as exc:  # an encoding expat cannot read
        raise SourceError(where, f"cannot be read: {exc}") from exc
    return props


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def from_mount(ctx: Context, mountpoint: Path, device: str, args: SeedParams) -> Seed | None:
    env = find_env_file(mountpoint)
    if env is None:
        return None
    where = f"{device}:{env.name}"
    try:
        data = env.read_bytes()
    except OSError as exc:
        raise SourceError(where, f"unreadable: {exc.strerror or exc}") from exc
    return from_env(ctx, data, where, args)


def from_env(ctx: Context, data: bytes, where: str, args: SeedParams) -> Seed:
    props = parse_properties(data, where)
    raw: dict[str, Any] = {}
    if props.get("instance-id"):
        raw["instance-id"] = props["instance-id"]
    host = props.get("local-hostname") or props.get("hostname")
    if host:
        raw["local-hostname"] = host
    if props.get("public-keys"):
        raw["public-keys"] = props["public-keys"]
    payloads: dict[str, bytes] = {}
    found: dict[str, str] = {"meta-data": where}
    encoded = props.get("user-data")
    if encoded:
        payloads["user-data"], encoding = _decode_user_data(encoded)
        found["user-data"] = f"{where} (property user-data, {encoding})"
    seedfrom = props.get("seedfrom")
    if seedfrom:
        seed = nocloud.from_url(ctx, seedfrom, args, local_meta=raw)
        seed.source = SOURCE
        seed.location = f"{where} -> {seed.location}"
        seed.payloads.update(payloads)
        seed.found.update(found)
        metadata = seed.metadata
    else:
        metadata = normalise(raw)
        if not metadata.get("instance-id"):
            ctx.problem(where, f"no instance-id property; using {DEFAULT_INSTANCE_ID!r}")
            metadata["instance-id"] = DEFAULT_INSTANCE_ID
        seed = make_seed(SOURCE, where, metadata, payloads, found)
    if props.get("password"):
        metadata["sensitive"] = {"password": props["password"]}
    seed.instance_id = metadata.get("instance-id")
    return seed


def _decode_user_data(value: str) -> tuple[bytes, str]:
    try:
        return base64.b64decode("".join(value.split()), validate=True), "base64"
    except (binascii.Error, ValueError):
        return value.encode("utf-8"), "raw"
