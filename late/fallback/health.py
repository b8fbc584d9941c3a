"""Marking a boot good: user health checks, then the boot counter reset.

Called by the ``boot_health`` module at the end of the final stage. On a boot
from the default entry whose checks in ``/etc/bootseed/health.d/`` all pass,
the counter goes back to its full number of tries. A boot from the fallback
entry does not reset it: the system keeps booting the distribution kernel
until someone (or a kernel package, through its hook) runs ``bootseed
fallback refresh``, rather than failing the broken default again every boot.
The outcome is written to ``/run/bootseed/fallback.json`` for ``status``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bootseed.contract.atomicfile import atomic_write
from bootseed.late.fallback import grubenv
from bootseed.late.fallback.config import GRUBENV_PATH, TRIES_VAR, Mode, read_config
from bootseed.late.fallback.origin import BootOrigin, boot_origin
from bootseed.late.target import TargetRoot

HEALTH_DIR = "/etc/bootseed/health.d"
GENERATOR_VERDICT = "/run/bootseed-generator"
RECORD_NAME = "fallback.json"
CHECK_TIMEOUT = 60.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass
class HealthRecord:
    installed: bool
    origin: BootOrigin
    marked_good: bool = False
    counter: str | None = None  # the count after this step, counter mode only
    checks: list[CheckResult] = field(default_factory=list)
    note: str = ""
    time: float = field(default_factory=time.time)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        doc["origin"] = self.origin.to_json()
        return doc


def run_health_checks(target: TargetRoot, origin: BootOrigin,
                      timeout: float = CHECK_TIMEOUT) -> list[CheckResult]:
    """Every executable in health.d, in name order; each must exit 0 within ``timeout``."""
    directory = target.path(HEALTH_DIR)
    if not directory.is_dir():
        return []
    results: list[CheckResult] = []
    env = dict(os.environ, BOOTSEED_BOOT_ENTRY="fallback" if origin.from_fallback else "default")
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file() or not os.access(path, os.X_OK):
            continue
        try:
            done = subprocess.run([str(path)], capture_output=True, text=True, timeout=timeout,
                                  env=env, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            results.append(CheckResult(path.name, False, f"no answer within {timeout:.0f} s"))
            continue
        except OSError as exc:
            results.append(CheckResult(path.name, False, f"cannot run: {exc}"))
            continue
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [""]
        results.append(CheckResult(path.name, done.returncode == 0,
                                   f"exit {done.returncode}" + (f": {tail[0][:200]}"
                                                                if tail[0] else "")))
    return results


def mark_boot(target: TargetRoot, proc: Path = Path("/proc")) -> HealthRecord:
    """Run the checks and reset the counter when this default boot is good."""
    config = read_config(target)
    origin = boot_origin(proc)
    if config is None:
        return HealthRecord(installed=False, origin=origin, note="fallback is not installed")
    record = HealthRecord(installed=True, origin=origin)
    record.checks = run_health_checks(target, origin)
    env_path = target.path(GRUBENV_PATH)
    if origin.from_fallback:
        record.note = ("booted from the fallback entry; the counter stays used up until "
                       "'bootseed fallback refresh'")
    elif record.failed_checks:
        names = ", ".join(c.name for c in record.failed_checks)
        record.note = f"health checks failed ({names}): the counter was not reset"
    elif config.mode is Mode.COUNTER:
        grubenv.update(env_path, {TRIES_VAR: str(config.tries)})
        record.marked_good = True
        record.note = f"boot marked good: {config.tries} tries"
    else:
        record.marked_good = True
        record.note = f"boot good; no counter to reset ({config.mode_reason})"
    if config.mode is Mode.COUNTER:
        try:
            record.counter = grubenv.read(env_path).get(TRIES_VAR)
        except grubenv.GrubenvError as exc:
            record.note += f"; {exc}"
    return record


def agent_enabled(target: TargetRoot) -> bool:
    """Did bootseed-generator add the late agent to this boot?"""
    verdict = target.read_text(GENERATOR_VERDICT, default="")
    return verdict.startswith("enabled")


def safety_net_skip(target: TargetRoot) -> str | None:
    """Why the mark-good unit leaves this boot alone, or ``None`` when it should mark it.

    It marks boots the late agent is not part of, and boots whose final stage
    finished without ``boot_health`` (a user's ``cloud_final_modules`` list
    without it). A boot whose agent did not get through its final stage is
    left to count down: that is the failure the counter is there to catch.
    """
    if not agent_enabled(target):
        return None
    from bootseed.late.status import read_status

    doc = read_status(target.path("/run/bootseed")) or {}
    final = (doc.get("stages") or {}).get("final") or {}
    if isinstance(final, dict) and final.get("end") is not None:
        return None
    return "the late agent is part of this boot and has not finished its final stage"


def write_record(run_dir: Path, record: HealthRecord) -> Path:
    path = run_dir / RECORD_NAME
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(record.to_json(), indent=2) + "\n", mode=0o644)
    return path


def read_record(run_dir: Path) -> dict[str, object] | None:
    try:
        doc = json.loads((run_dir / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None
