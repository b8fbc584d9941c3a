"""Data at the boundary of the user-data engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.early.boundedyaml import DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES
from bootseed.late.userdata.budget import Budget

DEFAULT_MAX_DECOMPRESSED = 16 * 1024 * 1024
DEFAULT_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    """Caps that keep hostile or broken user-data bounded in time and memory.

    ``max_total_bytes`` bounds every byte the engine creates beyond its input:
    gzip output, fetched include bodies and rendered templates, summed over the
    whole run. ``include_timeout`` is both the connect/read timeout and the
    wall-clock cap of one download attempt; ``include_retries`` extra attempts
    follow a connection error, timeout, 429 or 5xx, ``include_retry_delay``
    seconds apart; ``include_total_timeout`` bounds all downloads of one run
    together (retries and nested includes included). ``max_nodes`` caps the
    structured data of the whole run together: every YAML document counted
    with its aliases expanded (alias bombs), every JSON patch and every value a
    patch adds or copies (copy bombs). ``max_yaml_depth`` caps nesting (YAML
    and JSON). ``max_seconds`` caps the run's own work (template loops, huge
    documents); time spent waiting for include downloads is not counted. These
    three and ``max_total_bytes`` form the run's one ``Budget``.
    """

    max_total_bytes: int = DEFAULT_MAX_DECOMPRESSED
    max_parts: int = 1000
    max_include_depth: int = 5
    max_includes: int = 32
    include_timeout: float = 10.0
    include_total_timeout: float = 60.0
    include_retries: int = 2
    include_retry_delay: float = 1.0
    include_max_redirects: int = 5
    max_mime_depth: int = 10
    max_nodes: int = DEFAULT_MAX_NODES
    max_yaml_depth: int = DEFAULT_MAX_DEPTH
    max_seconds: float = DEFAULT_MAX_SECONDS

    def budget(self) -> Budget:
        return Budget(self.max_total_bytes, max_nodes=self.max_nodes, seconds=self.max_seconds)


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


@dataclass(frozen=True)
class PartRecord:
    """Every part the engine met, whatever became of it (``bootseed userdata render``).

    ``status``: ``used`` (a part of the result), ``unpacked`` (a container: include,
    archive, template, whose contents are parts of their own), ``skipped`` (for
    another launch index), ``ignored`` (empty, or a type bootseed does not handle)
    or ``failed`` (could not be decoded or parsed); ``reason`` says why for the last
    three.
    """

    where: str
    content_type: str | None
    filename: str | None
    size: int | None
    status: str
    reason: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"where": self.where, "content_type": self.content_type,
                "filename": self.filename, "size": self.size, "status": self.status,
                "reason": self.reason}


@dataclass
class UserDataResult:
    """What the engine made of one user-data (or vendor-data) blob.

    ``key_origins`` maps key paths of ``cloud_config`` (tuples of str/int, as
    in ``("users", 0, "name")``) to where the value came from, e.g.
    ``user-data part 2 (config.yaml) line 5``. ``notes`` are informational
    (a part skipped for another launch index, an empty part) and do not make
    the result fail.
    """

    parts: list[Part] = field(default_factory=list)
    cloud_config: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    key_origins: dict[tuple[Any, ...], str] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)
    # Every part met, in the order met, with what became of it.
    records: list[PartRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from bootseed.late.userdata.jsonsafe import jsonable

        return {
            "parts": [p.summary() for p in self.parts],
            "all_parts": [r.summary() for r in self.records],
            "cloud_config": jsonable(self.cloud_config),
            "problems": [{"where": p.where, "message": p.message} for p in self.problems],
            "notes": [{"where": p.where, "message": p.message} for p in self.notes],
        }
