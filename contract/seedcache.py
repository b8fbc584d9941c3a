"""The seed contract between the stages: ``/run/bootseed/``, ``seed.json`` and
``rootswitch.json``.

The early stage (or ``bootseed seed fetch``) writes it once; the late agent
reads it. Raw payloads are stored exactly as fetched, each 0600, in a 0700
directory; ``seed.json`` is the versioned manifest. ``rootswitch.json`` is the
side record of the root decisions when there is no manifest to append them to.
This module is the only writer and the only reader of that layout, the recorded
actions (``bootseed.contract.actions``) included.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.actions import Action, ActionError, actions_from_json, actions_to_json
from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Level, Problem, problems_from_json, problems_to_json

SEED_FORMAT = 1
SIDE_RECORD_FORMAT = 1
DEFAULT_SEED_DIR = "/run/bootseed"
MANIFEST_NAME = "seed.json"
SIDE_RECORD_NAME = "rootswitch.json"
# Problems recorded before they carried a level were shown as warnings.
RECORDED_LEVEL = Level.WARNING
PAYLOAD_NAMES = ("user-data", "meta-data", "vendor-data", "network-config")


class SeedCacheError(Exception):
    """The cache exists but cannot be used (bad manifest, wrong format, missing payload)."""


@dataclass
class StepTiming:
    """One early step: what it was, how long it took, and how it ended."""

    name: str
    duration_ms: float
    outcome: str = "ok"


@dataclass
class Seed:
    """A found seed (or the verdict that there is none).

    ``metadata`` is the normalised view every consumer reads: ``instance-id``,
    ``local-hostname``, ``public-keys`` (list of str) and, where the source has
    it, ``launch-index`` plus source-specific keys. ``payloads`` holds the raw
    bytes as fetched, keyed by ``PAYLOAD_NAMES``.
    """

    source: str
    location: str | None = None
    instance_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    payloads: dict[str, bytes] = field(default_factory=dict)
    stage: str = "early"
    found: dict[str, str] = field(default_factory=dict)
    timings: list[StepTiming] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    created: float = 0.0

    @property
    def has_seed(self) -> bool:
        return self.source != "none"

    def manifest(self) -> dict[str, Any]:
        """The ``seed.json`` document (no payload bytes, only their sizes)."""
        return {
            "format": SEED_FORMAT,
            "source": self.source,
            "location": self.location,
            "instance_id": self.instance_id,
            "stage": self.stage,
            "created": self.created,
            "metadata": self.metadata,
            "payloads": {name: len(data) for name, data in sorted(self.payloads.items())},
            "found": self.found,
            "timings": [asdict(t) for t in self.timings],
            "actions": actions_to_json(self.actions),
            "problems": problems_to_json(self.problems),
        }


def write_seed_cache(seed: Seed, directory: str | os.PathLike[str] = DEFAULT_SEED_DIR) -> Path:
    """Write payloads then the manifest, atomically each; the manifest is written last
    so a reader that finds ``seed.json`` finds every payload it lists."""
    root = Path(directory)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for name in PAYLOAD_NAMES:
        path = root / name
        if name in seed.payloads:
            atomic_write(path, seed.payloads[name], mode=0o600)
        elif path.exists():
            path.unlink()
    unknown = set(seed.payloads) - set(PAYLOAD_NAMES)
    if unknown:
        raise ValueError(f"unknown payload names: {sorted(unknown)}")
    manifest = json.dumps(seed.manifest(), indent=2, sort_keys=True, default=str)
    atomic_write(root / MANIFEST_NAME, manifest + "\n", mode=0o600)
    return root / MANIFEST_NAME


def read_seed_cache(directory: str | os.PathLike[str] = DEFAULT_SEED_DIR) -> Seed | None:
    """The cached seed, ``None`` when there is no cache, ``SeedCacheError`` when it is unusable."""
    root = Path(directory)
    manifest_path = root / MANIFEST_NAME
    doc = _read_document(manifest_path, SEED_FORMAT)
    if doc is None:
        return None
    payloads: dict[str, bytes] = {}
    for name, size in (doc.get("payloads") or {}).items():
        if name not in PAYLOAD_NAMES:
            raise SeedCacheError(f"{manifest_path}: unknown payload {name!r}")
        try:
            data = (root / name).read_bytes()
        except FileNotFoundError as exc:
            raise SeedCacheError(f"{root / name}: listed in the manifest but missing") from exc
        if len(data) != size:
            raise SeedCacheError(f"{root / name}: {len(data)} bytes, manifest says {size}")
        payloads[name] = data
    actions, problems, timings = _records(doc, manifest_path)
    return Seed(
        source=str(doc.get("source", "none")),
        location=doc.get("location"),
        instance_id=doc.get("instance_id"),
        metadata=dict(doc.get("metadata") or {}),
        payloads=payloads,
        stage=str(doc.get("stage", "early")),
        found=dict(doc.get("found") or {}),
        timings=timings,
        actions=actions,
        problems=problems,
        created=float(doc.get("created") or 0.0),
    )


@dataclass
class SideRecord:
    """The root decisions of an initramfs that wrote no ``seed.json``."""

    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    timings: list[StepTiming] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": SIDE_RECORD_FORMAT, "actions": actions_to_json(self.actions),
                "problems": problems_to_json(self.problems),
                "timings": [asdict(t) for t in self.timings]}


def write_side_record(record: SideRecord,
                      directory: str | os.PathLike[str] = DEFAULT_SEED_DIR) -> Path:
    """Not a ``seed.json``: writing one would tell the late agent there is no seed."""
    root = Path(directory)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = root / SIDE_RECORD_NAME
    atomic_write(path, json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n",
                 mode=0o600)
    return path


def read_side_record(directory: str | os.PathLike[str] = DEFAULT_SEED_DIR) -> SideRecord | None:
    path = Path(directory) / SIDE_RECORD_NAME
    # Files written before the side record had a format field are format 1.
    doc = _read_document(path, SIDE_RECORD_FORMAT, required=False)
    if doc is None:
        return None
    actions, problems, timings = _records(doc, path)
    return SideRecord(actions=actions, problems=problems, timings=timings)


def read_recorded_actions(directory: str | os.PathLike[str] = DEFAULT_SEED_DIR) -> list[Action]:
    """Every action the early stage recorded: ``seed.json``'s, then ``rootswitch.json``'s
    (both exist when the late agent wrote the manifest after an initramfs without a
    seed), each once. ``SeedCacheError`` names the file and the bad record."""
    root = Path(directory)
    found: list[Action] = []
    manifest = _read_document(root / MANIFEST_NAME, SEED_FORMAT)
    side = read_side_record(root)
    sources = [] if manifest is None else [_records(manifest, root / MANIFEST_NAME)[0]]
    sources += [] if side is None else [side.actions]
    for actions in sources:
        found += [action for action in actions if action not in found]
    return found


def _read_document(path: Path, expected: int, required: bool = True) -> dict[str, Any] | None:
    """A record file's JSON object; ``None`` when it does not exist. ``required``: the
    ``format`` key must be present (else only checked when present)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise SeedCacheError(f"{path}: not UTF-8: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedCacheError(f"{path}: not JSON: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(doc, dict):
        raise SeedCacheError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    if (required or "format" in doc) and doc.get("format") != expected:
        raise SeedCacheError(f"{path}: format {doc.get('format')!r}, expected {expected}")
    return doc


def _records(doc: dict[str, Any],
             path: Path) -> tuple[list[Action], list[Problem], list[StepTiming]]:
    try:
        actions = actions_from_json(doc.get("actions"))
        problems = problems_from_json(doc.get("problems"), RECORDED_LEVEL)
        timings = [StepTiming(**t) for t in doc.get("timings") or []]
    except (ActionError, ValueError, TypeError) as exc:
        raise SeedCacheError(f"{path}: {exc}") from exc
    return actions, problems, timings
