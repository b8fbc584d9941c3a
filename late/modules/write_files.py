"""``write_files``: write files into the target root (entries with ``defer: true`` wait
for ``write_files_deferred`` in the final stage, after users exist).

Owners are resolved in the target's own /etc/passwd and /etc/group. A bad entry is
reported by its index and path; the other entries are still written. Contents are
never logged: they often hold secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.late.accounts import AccountError, AccountsDB
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

DEFAULT_OWNER = "root:root"
DEFAULT_PERMISSIONS = 0o644
# Bound on a decompressed gzip payload, so a small seed cannot fill the disk.
MAX_DECOMPRESSED = 64 * 1024 * 1024
# Bound on all content (decoded) that write_files and write_files_deferred write in one
# run, counted over the whole list in order: an entry that would pass it is refused.
TOTAL_BUDGET = 64 * 1024 * 1024
# Per instance: which append entries are applied, so a re-run after a crash appends once.
APPEND_JOURNAL = "write_files-appends.json"

_ENCODINGS = {
    "text": (),
    "text/plain": (),
    "b64": ("b64",),
    "base64": ("b64",),
    "gz": ("gz",),
    "gzip": ("gz",),
    "gz+b64": ("b64", "gz"),
    "gz+base64": ("b64", "gz"),
    "gzip+b64": ("b64", "gz"),
    "gzip+base64": ("b64", "gz"),
}

SCHEMA: dict[str, Any] = {
    "properties": {
        "write_files": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    # Text, or bytes from YAML's !!binary (which JSON types cannot express).
                    "content": {},
                    "source": {"type": "object"},
                    "owner": {"type": "string"},
                    "permissions": {"oneOf": [
                        {"type": "string"},
                        {"type": "integer",
                         "x-note": "permissions as an integer (YAML reads 0644 as the "
                                   "octal mode): cloud-init's runtime accepts it, its "
                                   "schema (22.4) wants a string such as '0644'"}]},
                    "encoding": {"type": "string", "enum": sorted(_ENCODINGS)},
                    "append": {"type": "boolean"},
                    "defer": {"type": "boolean"},
                },
                "required": ["path"],
            },
        }
    }
}


class ContentTooLarge(ValueError):
    """Decoded content over the size left for it."""


class WriteFilesError(RuntimeError):
    """Some entries could not be written; the message names each."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    data: bytes
    owner: str
    mode: int
    append: bool
    defer: bool


def parse_permissions(value: Any) -> int:
    if value is None:
        return DEFAULT_PERMISSIONS
    if isinstance(value, bool):
        raise ValueError(f"permissions {value!r} is not an octal mode")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str):
        try:
            mode = int(value.strip(), 8)
        except ValueError:
            raise ValueError(f"permissions {value!r} is not an octal mode") from None
    else:
        raise ValueError(f"permissions {value!r} is not an octal mode")
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"permissions {value!r} is out of range")
    return mode


def _gunzip(data: bytes, limit: int = MAX_DECOMPRESSED) -> bytes:
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header
    out = inflater.decompress(data, max(limit, 1))
    if inflater.unconsumed_tail or len(out) > limit:
        raise ContentTooLarge(f"gzip content exceeds {limit} bytes when decompressed")
    if not inflater.eof:
        raise ValueError("gzip content is truncated")
    return out


def decode_content(content: Any, encoding: Any, limit: int = MAX_DECOMPRESSED) -> bytes:
    key = "text" if encoding is None else str(encoding).strip().lower()
    if key not in _ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r} (one of {', '.join(sorted(_ENCODINGS))})")
    if content is None:
        data = b""
    elif isinstance(content, bytes):
        data = content
    elif isinstance(content, str):
        data = content.encode("utf-8")
    else:
        raise ValueError(f"content must be a string, got {type(content).__name__}")
    if len(data) > limit and not _ENCODINGS[key]:
        raise ContentTooLarge(f"content is larger than the {limit} bytes left")
    for step in _ENCODINGS[key]:
        if step == "b64":
            try:
                data = base64.b64decode(data, validate=False)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"content is not valid base64: {exc}") from None
        else:
            try:
                data = _gunzip(data, limit)
            except zlib.error as exc:
                raise ValueError(f"content is not valid gzip: {exc}") from None
    if len(data) > limit:
        raise ContentTooLarge(f"content is larger than the {limit} bytes left")
    return data


def parse_entry(item: Any, limit: int = MAX_DECOMPRESSED) -> FileEntry:
    if not isinstance(item, dict):
        raise ValueError(f"expected a mapping, got {type(item).__name__}")
    path = item.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("'path' is required")
    if "source" in item and "content" not in item:
        raise ValueError("'source' (fetching content from a URI) is not supported; use content")
    owner = item.get("owner") or DEFAULT_OWNER
    if not isinstance(owner, str):
        raise ValueError(f"owner {owner!r} must be 'user', 'user:group' or ':group'")
    return FileEntry(
        path=str(PurePosixPath("/", path.strip())),
        data=decode_content(item.get("content"), item.get("encoding"), limit),
        owner=owner,
        mode=parse_permissions(item.get("permissions")),
        append=bool(item.get("append", False)),
        defer=bool(item.get("defer", False)),
    )


def write_entries(ctx: ModuleContext, deferred: bool) -> int:
    """Write the entries whose ``defer`` equals ``deferred``; returns how many were written."""
    items = ctx.cfg.get("write_files") or []
    if not isinstance(items, list):
        raise WriteFilesError(f"write_files: expected a list, got {type(items).__name__}")
    problems: list[str] = []
    db: AccountsDB | None = None
    journal = _AppendJournal(ctx.instance_dir / APPEND_JOURNAL)
    written = 0
    remaining = TOTAL_BUDGET
    for index, item in enumerate(items):
        label = f"write_files[{index}]"
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            label += f" ({item['path']})"
        if isinstance(item, dict):
            mine = bool(item.get("defer", False)) == deferred
        else:
            mine = not deferred  # reported once, by the first pass
        limit = min(remaining, MAX_DECOMPRESSED)
        try:
            # Both passes parse every entry, so the budget is shared in list order.
            entry = parse_entry(item, limit)
        except ContentTooLarge as exc:
            if mine and limit < MAX_DECOMPRESSED:
                problems.append(f"{label}: {exc}: the budget of {TOTAL_BUDGET} bytes for all "
                                "write_files content of a run is spent")
            elif mine:
                problems.append(f"{label}: {exc}")
            continue
        except ValueError as exc:
            if mine:
                problems.append(f"{label}: {exc}")
            continue
        remaining -= len(entry.data)
        if not mine:
            continue
        try:
            if db is None:
                db = AccountsDB.load(ctx.target)
            owner = db.resolve_owner(entry.owner)
            if entry.append:
                _append(ctx, journal, f"{index}:{entry.path}", entry, owner)
            else:
                ctx.target.write(entry.path, entry.data, mode=entry.mode, owner=owner)
            ctx.log.info("wrote %s (%d bytes, %o, %s)", entry.path, len(entry.data), entry.mode,
                         entry.owner)
            written += 1
        except (ValueError, AccountError, OSError) as exc:
            problems.append(f"{label}: {exc}")
    if problems:
        raise WriteFilesError("; ".join(problems))
    return written


def _append(ctx: ModuleContext, journal: _AppendJournal, where: str, entry: FileEntry,
            owner: tuple[int, int]) -> None:
    """Append once per instance: the journal says an entry is pending (with the digest of
    the file it will produce) before the atomic write, and done after it."""
    key = f"{where}:{hashlib.sha256(entry.data).hexdigest()}"
    state = journal.get(key)
    if state == "done":
        ctx.log.info("%s: this content was already appended for this instance", entry.path)
        return
    try:
        current = ctx.target.read_bytes(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        current = b""
    if state is not None and hashlib.sha256(current).hexdigest() == state:
        journal.set(key, "done")  # written before a crash, not yet recorded
        return
    result = current + entry.data
    journal.set(key, hashlib.sha256(result).hexdigest())
    ctx.target.write(entry.path, result, mode=entry.mode, owner=owner)
    journal.set(key, "done")


class _AppendJournal:
    """``{entry key: "done" | digest of the file the pending append produces}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._entries is None:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (FileNotFoundError, ValueError):
                loaded = {}
            self._entries = loaded if isinstance(loaded, dict) else {}
        return self._entries

    def get(self, key: str) -> str | None:
        value = self._load().get(key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str) -> None:
        entries = self._load()
        entries[key] = value
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(entries, sort_keys=True) + "\n", mode=0o600)


def handle(ctx: ModuleContext) -> None:
    write_entries(ctx, deferred=False)


MODULE = ModuleSpec(
    name="write_files",
    stage=Stage.INIT,
    order=20,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("write_files",),
)
