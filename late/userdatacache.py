"""Keep what the user-data engine made of a payload per instance, so a later boot
with the same input does not unpack, parse and merge it again (nor import YAML and
the engine to do so).

``<instance dir>/<name>.processed.json`` (0600, written atomically) holds one
:class:`~bootseed.late.userdata.types.UserDataResult` and the key it was made
under: the SHA-256 over the payload's bytes, the launch index, the
``instance-data`` the templates saw, bootseed's version and the size and mtime
of every file of the engine (``late/userdata``). Any difference, a missing,
unreadable or malformed file, or a value the encoding below cannot hold exactly,
means processing again. Payloads that pull in URLs are never cached: what they
include can change while their bytes do not.

Values are written with their types (``1``, ``True``, ``"1"``, dates, bytes,
non-string keys, tuples), so the config read back is the one the engine made.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Level, Problem
from bootseed.late import __version__
from bootseed.late.userdata.types import Part, PartRecord, UserDataResult

FORMAT = 1
SUFFIX = ".processed.json"

log = logging.getLogger("bootseed.userdata")

_ENGINE_DIR = Path(__file__).resolve().parent / "userdata"


class NotCacheable(ValueError):
    """A value the encoding cannot hold exactly."""


def encode(value: object) -> object:
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["f", value.hex()]
    if value is None:
        return ["n"]
    if isinstance(value, dict):
        return ["d", [[encode(k), encode(v)] for k, v in value.items()]]
    if isinstance(value, list):
        return ["l", [encode(v) for v in value]]
    if isinstance(value, tuple):
        return ["t", [encode(v) for v in value]]
    if isinstance(value, bytes):
        return ["y", base64.b64encode(value).decode("ascii")]
    if isinstance(value, datetime.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, datetime.date):
        return ["da", value.isoformat()]
    raise NotCacheable(f"{type(value).__name__} values are not cached")


def decode(data: Any) -> Any:
    tag = data[0]
    if tag == "s":
        return str(data[1])
    if tag == "b":
        return bool(data[1])
    if tag == "i":
        return int(data[1])
    if tag == "f":
        return float.fromhex(data[1])
    if tag == "n":
        return None
    if tag == "d":
        return {decode(k): decode(v) for k, v in data[1]}
    if tag == "l":
        return [decode(v) for v in data[1]]
    if tag == "t":
        return tuple(decode(v) for v in data[1])
    if tag == "y":
        return base64.b64decode(data[1], validate=True)
    if tag == "dt":
        return datetime.datetime.fromisoformat(data[1])
    if tag == "da":
        return datetime.date.fromisoformat(data[1])
    raise ValueError(f"unknown tag {tag!r}")


def _engine_fingerprint() -> list[object]:
    found: list[object] = []
    for entry in sorted(os.scandir(_ENGINE_DIR), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            info = entry.stat()
            found.append([entry.name, info.st_size, info.st_mtime_ns])
    return found


def cache_key(raw: bytes, launch_index: int | None, instance_data: dict[str, Any]) -> str:
    """What a result depends on besides the engine's code and bootseed's version."""
    try:
        seen = json.dumps(encode(instance_data), separators=(",", ":"))
    except NotCacheable:
        seen = repr(instance_data)
    text = json.dumps([FORMAT, __version__, _engine_fingerprint(), launch_index, seen,
                       hashlib.sha256(raw).hexdigest()], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def path_for(instance_dir: Path, name: str) -> Path:
    return instance_dir / f"{name}{SUFFIX}"


def _problem(data: Any) -> Problem:
    return Problem(str(data[0]), str(data[1]), Level(data[2]))


def _problems(items: list[Problem]) -> list[list[str]]:
    return [[p.where, p.message, str(p.level)] for p in items]


def to_document(key: str, result: UserDataResult) -> dict[str, Any]:
    """Raises :class:`NotCacheable` when some value could not be read back exactly."""
    return {
        "format": FORMAT,
        "key": key,
        "parts": [[p.index, p.content_type, p.filename,
                   base64.b64encode(p.payload).decode("ascii"), p.source, p.launch_index,
                   p.merge_how] for p in result.parts],
        "cloud_config": encode(result.cloud_config),
        "problems": _problems(result.problems),
        "notes": _problems(result.notes),
        "key_origins": [[encode(path), where] for path, where in result.key_origins.items()],
        "records": [[r.where, r.content_type, r.filename, r.size, r.status, r.reason]
                    for r in result.records],
    }


def from_document(doc: Any, key: str) -> UserDataResult | None:
    """The result in ``doc`` when it was made under ``key``; None otherwise."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("key") != key:
        return None
    try:
        parts = [Part(index=int(i), content_type=str(ctype), filename=name,
                      payload=base64.b64decode(payload, validate=True), source=str(source),
                      launch_index=index, merge_how=how)
                 for i, ctype, name, payload, source, index, how in doc["parts"]]
        config = decode(doc["cloud_config"])
        origins = {decode(path): str(where) for path, where in doc["key_origins"]}
        records = [PartRecord(*record) for record in doc["records"]]
        if not isinstance(config, dict):
            return None
        return UserDataResult(parts=parts, cloud_config=config,
                              problems=[_problem(p) for p in doc["problems"]],
                              key_origins=origins, notes=[_problem(p) for p in doc["notes"]],
                              records=records)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def load(path: Path, key: str) -> UserDataResult | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    result = from_document(doc, key)
    if result is not None:
        log.debug("%s: input unchanged, using the processed result", path.name)
    return result


def store(path: Path, key: str, result: UserDataResult) -> None:
    """Write the cache; a result that cannot be held exactly, or a failed write, only
    means the next boot processes the payload again."""
    try:
        text = json.dumps(to_document(key, result), separators=(",", ":"))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text, mode=0o600)
    except (NotCacheable, OSError) as exc:
        log.debug("%s not written: %s", path.name, exc)
        path.unlink(missing_ok=True)
