"""``power_state`` never acts on the machine running the tests: targets here are temp
dirs (not the host), and the scheduled script runs in a chroot whose ``flock`` and
``shutdown`` record what they were asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late.execute import run_captured
from bootseed.late.modules import power_state_change as power
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import Recorder, make_ctx, make_target

RECORD = "/var/log/power-record"


def _plan(cfg: dict[str, Any], root: Path) -> tuple[power.PowerPlan, list[Any]]:
    target = TargetRoot(root) if (root / "etc").exists() else make_target(root)
    ctx = make_ctx(target, {})
    return power.read_plan(ctx, cfg), ctx.problems


@pytest.mark.parametrize(("cfg", "argv"), [
    ({"mode": "poweroff"}, ["shutdown", "-P", "now"]),
    ({"mode": "reboot", "delay": "+5", "message": "Rebooting now"},
     ["shutdown", "-r", "+5", "Rebooting now"]),
    ({"mode": "halt", "delay": 2}, ["shutdown", "-H", "+2"]),
    ({"mode": "poweroff", "delay": "now"}, ["shutdown", "-P", "now"]),
    ({"mode": "poweroff", "delay": "10"}, ["shutdown", "-P", "+10"]),
])
def test_every_mode_and_delay_form(tmp_path: Path, cfg: dict[str, Any],
                                   argv: list[str]) -> None:
    plan, problems = _plan(cfg, tmp_path)
    assert problems == [] and plan.shutdown_argv() == argv
    assert plan.schedule_argv()[:2] == ["systemd-run", f"--unit={power.SCHEDULED_UNIT}"]


def test_scheduled_script_waits_for_the_run_lock_then_shuts_down(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    make_shell_root(tmp_path)
    (tmp_path / "var/log").mkdir(parents=True, exist_ok=True)
    for tool in ("flock", "shutdown"):
        target.write(f"/usr/bin/{tool}", f'#!/bin/sh\necho "{tool} $*" >> {RECORD}\n',
                     mode=0o755)
    plan, _ = _plan({"mode": "reboot", "delay": 3, "timeout": 45,
                     "message": "it's time; $(rm -rf /)"}, tmp_path)
    script = plan.schedule_argv()[-3:]
    assert script[:2] == ["/bin/sh", "-c"]
    assert run_captured(target, script, timeout=30).returncode == 0
    assert target.read_text(RECORD).splitlines() == [
        f"flock -w 45 {power.RUN_LOCK} true", "shutdown -r +3 it's time; $(rm -rf /)"]


def test_root_target_reports_and_does_nothing(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    rec = Recorder()
    ctx = make_ctx(target, {"power_state": {"mode": "reboot", "delay": "+1",
                                            "condition": "touch /ran"}}, recorder=rec)
    power.MODULE.handle(ctx)
    (note,) = ctx.problems
    assert note.level is Level.NOTE and "would reboot in 1 min" in note.message
    assert not target.exists("/ran") and rec.console == []


@pytest.mark.parametrize(("condition", "met"), [
    (True, True), (False, False), ("test -f /flag", True), ("test -f /nothing", False),
    (["/bin/sh", "-c", "exit 0"], True), (["/bin/sh", "-c", "exit 1"], False),
    (["no-such-command"], False),
])
def test_condition_forms(tmp_path: Path, condition: Any, met: bool) -> None:
    target = make_target(tmp_path)
    make_shell_root(tmp_path)
    (tmp_path / "flag").write_text("")
    assert power.condition_met(make_ctx(target, {}), condition) is met


@pytest.mark.parametrize(("cfg", "where"), [
    ({"delay": 1}, "power_state.mode"),
    ({"mode": "suspend"}, "power_state.mode"),
    ({"mode": "reboot", "delay": "soon"}, "power_state.delay"),
    ({"mode": "reboot", "delay": -1}, "power_state.delay"),
    ({"mode": "reboot", "condition": 3}, "power_state.condition"),
    ("reboot", "power_state"),
])
def test_bad_values_schedule_nothing(tmp_path: Path, cfg: Any, where: str) -> None:
    ctx = make_ctx(make_target(tmp_path), {"power_state": cfg})
    power.MODULE.handle(ctx)
    (problem,) = ctx.problems
    assert (problem.where, problem.level) == (where, Level.ERROR)


def test_bad_message_and_timeout_fall_back_to_defaults(tmp_path: Path) -> None:
    plan, problems = _plan({"mode": "poweroff", "message": "a\nb", "timeout": "long"},
                           tmp_path)
    assert [(p.where, p.level) for p in problems] == [
        ("power_state.message", Level.WARNING), ("power_state.timeout", Level.WARNING)]
    assert plan.message is None and plan.timeout == power.DEFAULT_TIMEOUT


def test_order_is_after_final_message_and_before_boot_health() -> None:
    from bootseed.late.modules import boot_health, final_message

    assert final_message.MODULE.order < power.MODULE.order < boot_health.MODULE.order
