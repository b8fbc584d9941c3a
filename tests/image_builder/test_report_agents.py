"""The guest report's agent detection and systemd unit figures (guest/report.py)."""

from __future__ import annotations

import pytest
from bootseed.image_builder.guest import report


def test_parse_unit_show() -> None:
    text = ("CPUUsageNSec=1234567\nExecMainStartTimestampMonotonic=5000000\n"
            "ExecMainExitTimestampMonotonic=0\nActiveEnterTimestampMonotonic=\n"
            "Result=success\nInactiveExitTimestampMonotonic=[not set]\nnoise\n")
    assert report.parse_unit_show(text) == {
        "CPUUsageNSec": 1234567, "ExecMainStartTimestampMonotonic": 5000000,
        "ExecMainExitTimestampMonotonic": 0, "ActiveEnterTimestampMonotonic": None,
        "Result": "success", "InactiveExitTimestampMonotonic": None}


def test_agent_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert report.agent_kind({"agent": "cloud-init"}) == "cloud-init"
    found = {"cloud-init": "/usr/bin/cloud-init"}
    monkeypatch.setattr(report.shutil, "which", lambda name: found.get(name))
    assert report.agent_kind({}) == "cloud-init"
    found["bootseed"] = "/usr/bin/bootseed"
    assert report.agent_kind({}) == "bootseed"


def test_cloud_init_status_reads_its_records(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    finished = tmp_path / "boot-finished"
    finished.write_text("85.88 - Sun, 22 Nov 2026 07:40:58 +0000 - v. 22.4.2\n")
    result = tmp_path / "result.json"
    result.write_text('{"v1": {"datasource": "DataSourceNoCloudNet", "errors": []}}')
    monkeypatch.setattr(report, "CLOUD_INIT_FINISHED", str(finished))
    monkeypatch.setattr(report, "CLOUD_INIT_RESULT", str(result))
    monkeypatch.setattr(report, "CLOUD_INIT_STATUS", str(tmp_path / "missing.json"))
    monkeypatch.setattr(report, "_run", lambda argv, timeout=30: (0, "22.4.2\n", ""))
    block = report.cloud_init_status(timeout=1)
    assert block["boot_finished_uptime"] == 85.88
    assert block["timed_out"] is False
    assert block["result"]["v1"]["errors"] == []
    assert block["status"] is None
    assert block["version"] == "22.4.2"


def test_run_probes_runs_each_executable_in_name_order(tmp_path) -> None:
    order = tmp_path / "order.txt"
    (tmp_path / "b-second").write_text(f"#!/bin/sh\necho b >> {order}\necho oops >&2\nexit 3\n")
    (tmp_path / "a-first").write_text(f"#!/bin/sh\necho a >> {order}\necho hello\n")
    (tmp_path / "not-executable").write_text("#!/bin/sh\nexit 9\n")
    (tmp_path / "b-second").chmod(0o755)
    (tmp_path / "a-first").chmod(0o755)
    found = report.run_probes(str(tmp_path))
    assert found == {"a-first": {"rc": 0, "stdout": "hello\n", "stderr": ""},
                     "b-second": {"rc": 3, "stdout": "", "stderr": "oops\n"}}
    assert order.read_text() == "a\nb\n"
    assert report.run_probes(str(tmp_path / "missing")) == {}
