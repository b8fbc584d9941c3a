"""``power_state_change``: power off, reboot or halt after the boot (cloud-init 22.4,
key ``power_state``).

It runs late in the final stage and only *schedules* the action: a transient
systemd unit waits (at most ``timeout`` seconds) until the running bootseed
stage has released its lock, so the status and boot_health are written, then calls
``shutdown`` with the ``delay``. Only on the host: in a ``--root`` target the
target is not the running system, so it reports what it would do.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import linegrammar
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

# Every bootseed run holds this lock (late/runner.py) until its status is written.
RUN_LOCK = "/run/bootseed/.lock"
SCHEDULED_UNIT = "bootseed-power-state"
DEFAULT_TIMEOUT = 30
MODES = {"poweroff": "-P", "reboot": "-r", "halt": "-H"}
SCHEMA: dict[str, Any] = {
    "properties": {
        "power_state": {
            "type": "object",
            "required": ["mode"],
            "properties": {
                "mode": {"type": "string", "enum": sorted(MODES)},
                "delay": {"oneOf": [{"type": "integer", "minimum": 0},
                                    {"type": "string", "pattern": r"^(now|\+?[0-9]+)$"}]},
                "message": {"type": "string"},
                "timeout": {"type": "integer", "minimum": 0},
                "condition": {"oneOf": [{"type": "boolean"}, {"type": "string"},
                                        {"type": "array", "items": {"type": "string"}}]},
            },
        }
    }
}


class PowerStateError(ValueError):
    """A value the whole action depends on; the message starts with its key."""


@dataclass(frozen=True)
class PowerPlan:
    mode: str
    delay_minutes: int  # 0: now
    message: str | None
    timeout: int
    condition: bool | str | list[str]

    def shutdown_argv(self) -> list[str]:
        when = "now" if self.delay_minutes == 0 else f"+{self.delay_minutes}"
        return ["shutdown", MODES[self.mode], when, *([self.message] if self.message else [])]

    def wait_script(self) -> str:
        """Wait until no bootseed run holds its lock (at most ``timeout`` s), then shut
        down; past the timeout it shuts down anyway, as cloud-init does."""
        return (f"flock -w {self.timeout} {RUN_LOCK} true || true\n"
                f"exec {shlex.join(self.shutdown_argv())}\n")

    def schedule_argv(self) -> list[str]:
        return ["systemd-run", f"--unit={SCHEDULED_UNIT}",
                "--description=bootseed power_state", "/bin/sh", "-c", self.wait_script()]

    def describe(self) -> str:
        when = "now" if self.delay_minutes == 0 else f"in {self.delay_minutes} min"
        return f"{self.mode} {when} once the final stage has finished"


def parse_delay(value: object) -> int:
    if value is None or value == "now":
        return 0
    if isinstance(value, bool):
        raise PowerStateError("delay: must be now, a number of minutes or +N")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\+?[0-9]{1,6}", value):
        return int(value.lstrip("+"))
    raise PowerStateError("delay: must be now, a number of minutes or +N")


def read_plan(ctx: ModuleContext, cfg: dict[str, Any]) -> PowerPlan:
    """The plan; a bad mode, delay or condition raises, a bad message or timeout is
    reported and replaced by its default."""
    mode = cfg.get("mode")
    if mode not in MODES:
        raise PowerStateError("mode: must be poweroff, reboot or halt")
    delay = parse_delay(cfg.get("delay", "now"))
    condition = cfg.get("condition", True)
    if not (isinstance(condition, bool | str) or (
            isinstance(condition, list) and condition
            and all(isinstance(a, str) for a in condition))):
        raise PowerStateError("condition: must be true, false, a shell command or an argv")
    message = cfg.get("message")
    if message is not None:
        try:
            message = linegrammar.single_line(message if isinstance(message, str) else "\n",
                                              "power_state.message")
        except linegrammar.LineGrammarError as exc:
            ctx.problems.append(Problem("power_state.message", f"{exc}; sent without it",
                                        Level.WARNING))
            message = None
    timeout = cfg.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        ctx.problems.append(Problem("power_state.timeout", "must be a number of seconds; "
                                    f"{DEFAULT_TIMEOUT} used", Level.WARNING))
        timeout = DEFAULT_TIMEOUT
    return PowerPlan(str(mode), delay, message or None, timeout, condition)


def condition_met(ctx: ModuleContext, condition: bool | str | list[str]) -> bool:
    """``true``/``false``, or a command run in the target: exit 0 means go."""
    from bootseed.late.execute import TargetExecError, run_in_target

    if isinstance(condition, bool):
        return condition
    argv = ["/bin/sh", "-c", condition] if isinstance(condition, str) else condition
    try:
        run_in_target(ctx.target, argv, what="power_state.condition")
    except TargetExecError as exc:
        ctx.log.info("power_state condition not met: %s", exc)
        return False
    return True


def handle(ctx: ModuleContext) -> None:
    from bootseed.late.execute import run_captured

    cfg = ctx.cfg.get("power_state")
    if not isinstance(cfg, dict):
        ctx.problems.append(Problem("power_state", "must be a mapping with 'mode'; "
                                    "nothing scheduled"))
        return
    try:
        plan = read_plan(ctx, cfg)
    except PowerStateError as exc:
        key, _, message = str(exc).partition(": ")
        ctx.problems.append(Problem(f"power_state.{key}", f"{message}; nothing scheduled"))
        return
    if not ctx.target.is_host:
        ctx.problems.append(Problem("power_state", f"would {plan.describe()}; the target is "
                                    "not the running system, nothing done", Level.NOTE))
        return
    if not condition_met(ctx, plan.condition):
        ctx.problems.append(Problem("power_state.condition", f"not met: no {plan.mode}",
                                    Level.NOTE))
        return
    run = run_captured(ctx.target, plan.schedule_argv(), timeout=60)
    if run.returncode != 0:
        ctx.problems.append(Problem("power_state", f"scheduling the {plan.mode} failed: "
                                    f"{run.output.strip()[-200:]}"))
        return
    ctx.console(f"bootseed: power_state: {plan.describe()}")


MODULE = ModuleSpec(
    name="power_state_change",
    stage=Stage.FINAL,
    # After final_message (100), so "finished" is printed before the system goes down;
    # before boot_health (1000), which stays last. Nothing is cut off: the action only
    # starts once the final stage (boot_health and the status included) is done.
    order=900,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("power_state",),
    aliases=("power-state-change", "power_state"),
)
