"""The seed contract between the stages: ``/run/bootseed/`` and ``seed.json``.

The early stage (or ``bootseed seed fetch``) writes it once; the late agent
reads it. Raw payloads are stored exactly as fetched, each 0600, in a 0700
directory; ``seed.json`` is the versioned manifest. This module is the only
writer and the only reader of that layout.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write

SEED_FORMAT = 1
DEFAULT_SEED_DIR = "/run/bootseed"
MANIFEST_NAME = "seed.json"
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
class SeedProblem:
    """Something that went wrong while looking for the seed, and where."""

    where: str
    message: str


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
    actions: list[dict[str, Any]] = field(default_factory=list)
    problems: list[SeedProblem] = field(default_factory=list)
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
            "actions": self.actions,
            "problems": [asdict(p) for p in self.problems],
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
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedCacheError(f"{manifest_path}: not JSON: line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(doc, dict) or doc.get("format") != SEED_FORMAT:
        raise SeedCacheError(
            f"{manifest_path}: format {doc.get('format') if isinstance(doc, dict) else '?'!r}, "
            f"expected {SEED_FORMAT}"
        )
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
    return Seed(
        source=str(doc.get("source", "none")),
        location=doc.get("location"),
        instance_id=doc.get("instance_id"),
        metadata=dict(doc.get("metadata") or {}),
        payloads=payloads,
        stage=str(doc.get("stage", "early")),
        found=dict(doc.get("found") or {}),
        timings=[StepTiming(**t) for t in doc.get("timings") or []],
        actions=list(doc.get("actions") or []),
        problems=[SeedProblem(**p) for p in doc.get("problems") or []],
        created=float(doc.get("created") or 0.0),
    )
