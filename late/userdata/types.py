"""Data at the boundary of the user-data engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_DECOMPRESSED = 16 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Caps that keep hostile or broken user-data bounded in time and memory."""

    max_total_bytes: int = DEFAULT_MAX_DECOMPRESSED
    max_parts: int = 1000
    max_include_depth: int = 5
    max_includes: int = 32
    include_timeout: float = 10.0
    include_retries: int = 2
    max_mime_depth: int = 10


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: ``where`` names the part, URL or YAML line."""

    where: str
    message: str


@dataclass
class Part:
    """One piece of user-data after unpacking, in the order it will be handled."""

    index: int
    content_type: str
    filename: str | None
    payload: bytes
    source: str
    launch_index: int | None = None
    merge_how: str | None = None

    @property
    def size(self) -> int:
        return len(self.payload)

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.payload).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "content_type": self.content_type,
            "filename": self.filename,
            "launch_index": self.launch_index,
            "source": self.source,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass
class UserDataResult:
    """What the engine made of one user-data (or vendor-data) blob."""

    parts: list[Part] = field(default_factory=list)
    cloud_config: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "parts": [p.summary() for p in self.parts],
            "cloud_config": self.cloud_config,
            "problems": [{"where": p.where, "message": p.message} for p in self.problems],
        }
