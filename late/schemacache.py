"""Remember a cloud-config's schema verdict per instance, so a later boot with the
same config does not import jsonschema and validate again.

``<instance dir>/schema-validated.json`` (0600, written atomically) holds the
problems found, keyed by the SHA-256 of the merged config with the origins of
its keys (a problem names its file and line) and by the SHA-256 of the
assembled schema. Assembling the schema imports every module, so the file
also records a fingerprint of the code the schema and the validator come from
(bootseed's version, size, mtime and inode of every ``.py`` file of
``bootseed.late`` and of ``jsonschema``, as Python's own bytecode cache trusts
size and mtime) and of any extra modules' schemas. When the config key and the
code fingerprint match, the stored problems are the verdict; when only the
code changed, the schema is assembled and its hash decides; otherwise the
config is validated and the file rewritten. A missing, unreadable or malformed
file means validating again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Level, Problem
from bootseed.late import __version__
from bootseed.late.modules.base import ModuleSpec
from bootseed.late.registry import Registry
from bootseed.late.schema import build_schema, validate

CACHE_NAME = "schema-validated.json"
FORMAT = 1
LEVELS = ("error", "warning")

log = logging.getLogger("bootseed.schema")

_LATE_DIR = Path(__file__).resolve().parent


def canonical(value: object) -> object:
    """A JSON-able form of ``value`` that keeps what JSON would blur: the types
    (``1``, ``True``, ``"1"``, a date) and non-string keys, and the key order."""
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["f", repr(value)]
    if value is None:
        return ["n"]
    if isinstance(value, dict):
        return ["d", [[canonical(k), canonical(v)] for k, v in value.items()]]
    if isinstance(value, list):
        return ["l", [canonical(v) for v in value]]
    if isinstance(value, tuple):
        return ["t", [canonical(v) for v in value]]
    return ["o", f"{type(value).__module__}.{type(value).__qualname__}", repr(value)]


def digest(value: object) -> str:
    text = json.dumps(canonical(value), separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def config_key(cfg: object, origins: Mapping[tuple[Any, ...], str]) -> str:
    return digest([cfg, [[list(path), where] for path, where in origins.items()]])


def schema_key(schema: dict[str, Any]) -> str:
    return digest(schema)


def _py_files(top: Path, recursive: bool) -> Iterable[Path]:
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith(".py") and entry.is_file():
            yield Path(entry.path)
        elif recursive and entry.is_dir() and entry.name != "__pycache__":
            yield from _py_files(Path(entry.path), recursive)


def code_fingerprint(extra: Iterable[ModuleSpec] = ()) -> str:
    """What the assembled schema and the validator's verdict depend on, read from
    file metadata only (no import)."""
    parts: list[object] = [FORMAT, __version__]
    roots: list[tuple[Path, bool]] = [(_LATE_DIR, True)]
    found = PathFinder.find_spec("jsonschema")
    if found is not None and found.submodule_search_locations:
        for location in found.submodule_search_locations:
            roots.append((Path(location), True))
    else:
        parts.append("no jsonschema")
    for top, recursive in roots:
        for path in _py_files(top, recursive):
            try:
                st = path.stat()
            except OSError:
                continue
            parts.append([str(path), st.st_size, st.st_mtime_ns, st.st_ino])
    parts.append([[spec.name, canonical(spec.schema)] for spec in extra])
    return digest(parts)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    for key in ("config_sha256", "schema_sha256", "code"):
        if not isinstance(doc.get(key), str):
            return None
    problems = doc.get("problems")
    if not isinstance(problems, list):
        return None
    for item in problems:
        if (not isinstance(item, list) or len(item) != 3
                or not all(isinstance(x, str) for x in item) or item[2] not in LEVELS):
            return None
    return doc


def _problems(doc: dict[str, Any]) -> list[Problem]:
    return [Problem(where, message, Level(level)) for where, message, level in doc["problems"]]


def _write(path: Path, cfg_key: str, sch_key: str, code: str,
           problems: list[Problem]) -> None:
    doc = {
        "format": FORMAT,
        "config_sha256": cfg_key,
        "schema_sha256": sch_key,
        "code": code,
        "problems": [[p.where, p.message, str(p.level)] for p in problems],
    }
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, json.dumps(doc, indent=1) + "\n", mode=0o600)
    except OSError as exc:  # only a cache: the next boot validates again
        log.warning("cannot write %s: %s", path, exc)


def validate_cached(
    cfg: dict[str, Any],
    registry: Registry,
    origins: Mapping[tuple[Any, ...], str],
    cache: Path,
    extra: Iterable[ModuleSpec] = (),
) -> list[Problem]:
    """``schema.validate(cfg, registry, origins)``, reusing the verdict in ``cache``
    when neither the config nor the schema changed since it was written."""
    cfg_key = config_key(cfg, origins)
    code = code_fingerprint(extra)
    doc = _read(cache)
    if doc is not None and doc["config_sha256"] == cfg_key and doc["code"] == code:
        log.debug("cloud-config unchanged since %s: reusing its verdict", cache)
        return _problems(doc)
    schema = build_schema(registry)
    sch_key = schema_key(schema)
    if doc is not None and doc["config_sha256"] == cfg_key and doc["schema_sha256"] == sch_key:
        log.debug("code changed, schema and cloud-config did not: reusing %s", cache)
        problems = _problems(doc)
    else:
        problems = validate(cfg, registry, origins, schema=schema)
    _write(cache, cfg_key, sch_key, code, problems)
    return problems
