"""The run's status: what ran, how long, what failed — ``/run/bootseed/status.json``.

The status file is world-readable (``bootseed status`` works for any user), so
everything in it goes through the redactor first. ``result.json`` is the short
cloud-init-style verdict written when the final stage ends.

States: ``running`` while stages go, ``done`` when the final stage finished
and no module failed, ``error`` when a module failed or the run could not
proceed, ``disabled`` when bootseed is switched off. ``degraded`` is set when
the run is done but reported problems (schema errors, unknown keys, bad module
list entries).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Level, Problem, problems_from_json, problems_to_json
from bootseed.late import __version__, jsonout
from bootseed.late.redact import Redactor

STATUS_FORMAT = 1
STATUS_NAME = "status.json"
RESULT_NAME = "result.json"

# ``bootseed status`` exit codes.
EXIT_DONE = 0
EXIT_ERROR = 1
EXIT_RUNNING_OR_DEGRADED = 2

FINAL_STATES = ("done", "error", "disabled")


@dataclass
class StageTiming:
    start: float
    end: float | None = None
    duration: float | None = None


@dataclass
class ModuleResult:
    name: str
    stage: str
    frequency: str
    status: str  # ok | failed | skipped
    duration: float
    error: str | None = None
    reason: str | None = None
    exception: str | None = None


@dataclass
class RunStatus:
    state: str = "running"
    stage: str | None = None
    boot_id: str = ""
    instance_id: str | None = None
    previous_instance_id: str | None = None
    new_instance: bool = False
    source: str | None = None
    no_seed: bool = False
    # The stage that processed user-data and ran the init modules this boot.
    config_stage: str | None = None
    version: str = __version__
    started: float = field(default_factory=time.time)
    finished: float | None = None
    boot_finished_uptime: float | None = None
    stages: dict[str, StageTiming] = field(default_factory=dict)
    modules: list[ModuleResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        """Done, but with warnings or errors to look at (notes do not count)."""
        return self.state == "done" and any(p.level is not Level.NOTE for p in self.problems)

    def stage_done(self, stage: str) -> bool:
        timing = self.stages.get(stage)
        return timing is not None and timing.end is not None

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["problems"] = problems_to_json(self.problems)
        doc["format"] = STATUS_FORMAT
        doc["degraded"] = self.degraded
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunStatus:
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        status = cls(**known)
        status.stages = {k: StageTiming(**v) for k, v in (doc.get("stages") or {}).items()}
        status.modules = [ModuleResult(**m) for m in doc.get("modules") or []]
        # Files from before the one problem type said "info" for a note; the level
        # was always written, so the default only covers hand-made files.
        status.problems = problems_from_json(doc.get("problems"), Level.WARNING)
        return status


def exit_code(doc: dict[str, Any]) -> int:
    """0 done (or disabled), 1 error, 2 still running or done with problems."""
    state = doc.get("state")
    if state == "error":
        return EXIT_ERROR
    if state == "running" or doc.get("degraded"):
        return EXIT_RUNNING_OR_DEGRADED
    return EXIT_DONE


def prepare_run_dir(run_dir: Path) -> None:
    """The seed cache makes the directory 0700; the status must be readable by anyone,
    so the directory becomes traversable (0711, not listable). Every payload in it is
    0600, so that opens nothing secret."""
    run_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(run_dir, 0o711)


def write_status(run_dir: Path, status: RunStatus, redactor: Redactor) -> Path:
    prepare_run_dir(run_dir)
    doc = redactor.data(status.to_json())
    path = run_dir / STATUS_NAME
    atomic_write(path, jsonout.dumps(doc, indent=2, sort_keys=True) + "\n", mode=0o644)
    return path


def result_document(status: RunStatus, redactor: Redactor) -> dict[str, Any]:
    """The verdict in cloud-init's ``result.json`` shape (``v1``: datasource, errors),
    redacted; bootseed's run directory and ``/run/cloud-init`` hold the same text."""
    errors = [*status.errors]
    errors += [f"{m.name}: {m.error}" for m in status.modules if m.status == "failed"]
    recoverable = [str(p) for p in status.problems if p.level is not Level.NOTE]
    doc = {"v1": {"datasource": status.source, "errors": errors,
                  "recoverable_errors": recoverable}}
    redacted: dict[str, Any] = redactor.data(doc)
    return redacted


def write_result(run_dir: Path, status: RunStatus, redactor: Redactor) -> Path:
    path = run_dir / RESULT_NAME
    atomic_write(path, jsonout.dumps(result_document(status, redactor), indent=2) + "\n",
                 mode=0o644)
    return path


def read_status(run_dir: Path) -> dict[str, Any] | None:
    try:
        text = (run_dir / STATUS_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        # Writes are atomic, so this is a damaged file, not a half-written one.
        return None
    return doc if isinstance(doc, dict) else None
