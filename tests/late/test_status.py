from __future__ import annotations

import json
import stat
from pathlib import Path

from bootseed.contract.problems import Level, Problem
from bootseed.late.redact import Redactor
from bootseed.late.status import (
    ModuleResult,
    RunStatus,
    exit_code,
    read_status,
    write_result,
    write_status,
)


def test_round_trip_and_redaction(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    status = RunStatus(boot_id="b1", instance_id="i-1", source="nocloud")
    status.modules.append(ModuleResult("runcmd", "config", "per-instance", "failed", 0.5,
                                       error="echo hunter2-secret failed"))
    status.problems.append(Problem("user-data line 3", "bad", Level.WARNING))
    status.state = "error"
    redactor = Redactor(["hunter2-secret"])
    path = write_status(run_dir, status, redactor)
    write_result(run_dir, status, redactor)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # World-readable status needs a traversable directory.
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o711
    text = path.read_text() + (run_dir / "result.json").read_text()
    assert "hunter2-secret" not in text
    doc = read_status(run_dir)
    assert doc is not None
    again = RunStatus.from_json(doc)
    assert again.modules[0].name == "runcmd" and again.problems[0].where == "user-data line 3"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["v1"]["datasource"] == "nocloud"
    assert result["v1"]["errors"][0].startswith("runcmd: ")


def test_exit_codes() -> None:
    assert exit_code({"state": "done", "degraded": False}) == 0
    assert exit_code({"state": "disabled"}) == 0
    assert exit_code({"state": "error"}) == 1
    assert exit_code({"state": "running"}) == 2
    assert exit_code({"state": "done", "degraded": True}) == 2
    status = RunStatus(state="done")
    status.problems.append(Problem("x", "y", Level.WARNING))
    assert status.to_json()["degraded"] is True


def test_info_entries_do_not_degrade() -> None:
    status = RunStatus(state="done")
    status.problems.append(Problem("user-data part 2", "skipped: launch index 3", Level.NOTE))
    assert status.to_json()["degraded"] is False
    status.problems.append(Problem("user-data line 4", "unknown key", Level.WARNING))
    assert status.to_json()["degraded"] is True


def test_status_files_from_before_the_one_problem_type_still_read(tmp_path: Path) -> None:
    # Older status files spelled a note "info"; a running boot's status is read back.
    old = {"state": "done", "boot_id": "b0", "problems": [
        {"where": "vendor-data", "message": "disabled by user-data", "level": "info"},
        {"where": "seed", "message": "no instance-id", "level": "warning"}]}
    status = RunStatus.from_json(old)
    assert status.problems == [Problem("vendor-data", "disabled by user-data", Level.NOTE),
                               Problem("seed", "no instance-id", Level.WARNING)]
    doc = status.to_json()
    assert doc["problems"][0] == {"where": "vendor-data", "message": "disabled by user-data",
                                  "level": "note"}
    assert doc["degraded"] is True
    path = write_status(tmp_path, status, Redactor())
    assert json.loads(path.read_text())["problems"] == doc["problems"]
