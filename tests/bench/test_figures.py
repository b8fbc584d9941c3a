"""Parsing and arithmetic of the side-by-side benchmarks (bench/figures.py)."""

from __future__ import annotations

import base64
from typing import Any

from bench.figures import (
    AgentRun,
    Expected,
    Pair,
    agent_run,
    cloud_init_stages,
    importtime_profiles,
    median,
    pair_ratios,
    ratio,
    target_verdict,
    unit_figures,
)

EXPECTED = Expected(hostname="h", users={"alice": 1}, files={"/f": b"x\n"},
                    phone_home_prefix="/phone-home/iid-1")


def _probes() -> dict[str, Any]:
    return {
        "hostname": "h",
        "users": [{"name": "alice", "authorized_keys": ["ssh-ed25519 AAAA a"]}],
        "files": {"/f": {"size": 2, "mode": "0644", "b64": base64.b64encode(b"x\n").decode()}},
    }


def _units(*names: str) -> dict[str, Any]:
    return {name: {"CPUUsageNSec": 1_500_000_000, "ExecMainStartTimestampMonotonic": 10_000_000,
                   "ExecMainExitTimestampMonotonic": 12_500_000, "Result": "success"}
            for name in names}


def test_unit_figures_wall_and_cpu() -> None:
    units = _units("a.service")
    units["b.service"] = {"CPUUsageNSec": 2**64 - 1, "ExecMainStartTimestampMonotonic": 0,
                          "ExecMainExitTimestampMonotonic": None}
    wall, cpu = unit_figures(units)
    assert wall == {"a.service": 2.5}
    assert cpu == {"a.service": 1.5}


def test_cloud_init_stages_from_status_json() -> None:
    status = {"v1": {"stage": None, "init-local": {"start": 100.0, "finished": 101.25,
                                                   "errors": []},
                     "init": {"start": 102.0, "finished": None},
                     "modules-final": {"start": 110.0, "finished": 113.5}}}
    assert cloud_init_stages(status) == {"init-local": 1.25, "modules-final": 3.5}
    assert cloud_init_stages(None) == {}


def test_cloud_init_report_ok() -> None:
    raw = {**_probes(), "agent": "cloud-init",
           "agent_units": _units("cloud-init.service", "cloud-final.service"),
           "cloud_init": {"timed_out": False, "boot_finished_uptime": 85.88,
                          "result": {"v1": {"datasource": "DataSourceNoCloudNet", "errors": []}},
                          "status": {"v1": {"init": {"start": 1.0, "finished": 3.0,
                                                     "errors": []}}}}}
    run = agent_run(raw, EXPECTED, ["/phone-home/iid-1"])
    assert run.ok, run.problems
    assert run.configured_uptime == 85.88
    assert run.stages == {"init": 2.0}
    assert run.wall_total == 5.0
    assert run.cpu_total == 3.0


def test_cloud_init_errors_and_missing_config_make_the_run_invalid() -> None:
    raw = {**_probes(), "agent": "cloud-init", "hostname": "debian",
           "cloud_init": {"boot_finished_uptime": None,
                          "result": {"v1": {"errors": ["('locale', Error)"]}},
                          "status": {"v1": {"modules-config": {"errors": ["('locale', Error)"]}}}}}
    run = agent_run(raw, EXPECTED, [])
    assert not run.ok
    assert "cloud-init: ('locale', Error)" in run.problems
    assert len([p for p in run.problems if "locale" in p]) == 1
    assert any(p.startswith("hostname is 'debian'") for p in run.problems)
    assert any(p.startswith("no phone-home") for p in run.problems)


def test_bootseed_report() -> None:
    status = {"state": "done", "boot_finished_uptime": 40.5,
              "stages": {"config": {"duration": 1.2}, "final": {"duration": 0.4}},
              "modules": [{"name": "users_groups", "status": "ok"}]}
    raw = {**_probes(), "agent": "bootseed", "status": {"rc": 0, "json": status},
           "agent_units": _units("bootseed.service")}
    run = agent_run(raw, EXPECTED, ["/phone-home/iid-1"])
    assert run.ok, run.problems
    assert run.stages == {"config": 1.2, "final": 0.4}
    status["modules"] = [{"name": "runcmd", "status": "error", "error": "exit 1"}]
    raw["files"] = {}
    run = agent_run(raw, EXPECTED, ["/phone-home/iid-1"])
    assert "bootseed module runcmd: exit 1" in run.problems
    assert "file /f missing" in run.problems


def test_median_ratio_and_failed_pairs() -> None:
    good = Pair(AgentRun("bootseed", configured_uptime=40.0),
                AgentRun("cloud-init", configured_uptime=100.0))
    good2 = Pair(AgentRun("bootseed", configured_uptime=50.0),
                 AgentRun("cloud-init", configured_uptime=90.0))
    failed = Pair(AgentRun("bootseed", configured_uptime=10.0),
                  AgentRun("cloud-init", configured_uptime=None, problems=["x"]))
    ratios = pair_ratios([good, good2, failed], "configured_uptime")
    assert ratios == [2.5, 1.8, None]
    assert median(ratios) == 2.15
    assert median([None]) is None
    assert ratio(10.0, 0.0) is None


def test_target_verdicts() -> None:
    assert target_verdict(12.0, 10.0, higher_is_better=True, unit="x").startswith("met")
    assert target_verdict(5.0, 10.0, True, "x") == "MISSED by 5x (5x < 10x, 50% of the target)"
    assert target_verdict(4.6, 5.0, False, " MiB").startswith("met")
    assert target_verdict(300.0, 150.0, False, " ms").startswith("MISSED by 150 ms")
    assert target_verdict(None, 1.0, True) == "not measured"


def test_importtime_profiles_from_a_console_log() -> None:
    console = "\n".join([
        "[  OK  ] Started something.",
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |   _io",
        "import time:       200 |        300 | site",
        "import time:      1000 |       1000 |     yaml.error",
        "import time:      5000 |     250000 | bootseed.late.cli",
        "[   40.1] kernel line",
        "import time: self [us] | cumulative | imported package",
        "import time:      3000 |       4000 | json",
    ])
    first, second = importtime_profiles(console)
    assert first.total_s == 0.0063
    assert list(first.top) == ["bootseed.late.cli", "site"]
    assert first.top == {"bootseed.late.cli": 0.25, "site": 0.0003}
    assert second.top == {"json": 0.004}
