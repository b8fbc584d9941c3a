"""systemd services in the target: enable, start, restart — and say when it did not work.

Modules that hand over to a long-running agent (puppet, salt-minion,
mcollective) enable it and start or restart it. In a ``--root`` target nothing
runs: ``systemctl enable`` still works offline (it only makes links), starting
is left to the target's next boot, and that is not a failure.
"""

from __future__ import annotations

from bootseed.contract.problems import Level, Problem
from bootseed.late.execute import TargetExecError, run_captured
from bootseed.late.target import TargetRoot

SYSTEMCTL_TIMEOUT = 120.0


def _systemctl(target: TargetRoot, where: str, *args: str) -> Problem | None:
    try:
        run = run_captured(target, ["systemctl", *args], timeout=SYSTEMCTL_TIMEOUT)
    except TargetExecError as exc:
        return Problem(where, f"systemctl {' '.join(args)}: {exc}", Level.WARNING)
    if run.returncode != 0:
        tail = run.output.strip().splitlines()[-1:] or ["no output"]
        return Problem(where, f"systemctl {' '.join(args)} exited with status "
                       f"{run.returncode}: {tail[0]}", Level.WARNING)
    return None


def is_active(target: TargetRoot, unit: str) -> bool:
    if not target.is_host:
        return False
    try:
        run = run_captured(target, ["systemctl", "is-active", "--quiet", unit],
                           timeout=SYSTEMCTL_TIMEOUT)
    except TargetExecError:
        return False
    return run.returncode == 0


def enable(target: TargetRoot, unit: str, where: str, *, start: bool) -> Problem | None:
    """Enable ``unit``; with ``start``, also (re)start it now on the running system."""
    problem = _systemctl(target, where, "enable", unit)
    if problem is not None or not start or not target.is_host:
        return problem
    return _systemctl(target, where, "restart", unit)


def disable(target: TargetRoot, unit: str, where: str) -> Problem | None:
    """Disable ``unit`` and stop it on the running system."""
    problem = _systemctl(target, where, "disable", unit)
    if problem is not None or not target.is_host:
        return problem
    return _systemctl(target, where, "stop", unit)


def restart_if_running(target: TargetRoot, unit: str, where: str) -> Problem | None:
    """A running agent reads new configuration on a restart; a stopped one at its start."""
    if not is_active(target, unit):
        return None
    return _systemctl(target, where, "restart", unit)


def try_restart(target: TargetRoot, unit: str, where: str) -> Problem | None:
    """Restart ``unit`` when it runs or is still starting (the restart job follows the
    start job, where ``is-active`` would miss it); one that has not started yet reads the
    new files when it does. Nothing in a ``--root`` target."""
    if not target.is_host:
        return None
    return _systemctl(target, where, "try-restart", unit)
