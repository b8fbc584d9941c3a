"""The target's rsyslog: is it there, the forwarding drop-in for ``bootseed.syslog=``, and
restarting it when it already runs.

The system logger is told where ``bootseed.syslog=`` points before the agent's first
module runs: a drop-in ``/etc/rsyslog.d/05-bootseed-remote.conf`` forwards every
message there (``omfwd``, with a memory queue so messages written before the network
is up go out once it is, and an unreachable host never stalls local logging). The
drop-in is the command line's: a boot without the parameter removes it again.
journald alone cannot forward to a remote host, so without rsyslog only bootseed's
own lines reach the destination, and the status says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from bootseed.contract.problems import Level, Problem
from bootseed.contract.remotesyslog import SyslogTarget
from bootseed.late.execute import TargetExecError, run_captured
from bootseed.late.target import TargetRoot

SERVICE = "rsyslog.service"
DAEMONS = ("/usr/sbin/rsyslogd", "/sbin/rsyslogd")
CONFIG_DIR = "/etc/rsyslog.d"
FORWARD_DROPIN = f"{CONFIG_DIR}/05-bootseed-remote.conf"
RESTART_TIMEOUT = 60.0
# Messages kept while the destination cannot be reached (rsyslog's memory queue).
QUEUE_SIZE = 10000
WHERE = "kernel command line: bootseed.syslog"


def installed(target: TargetRoot) -> bool:
    return any(target.exists(path) for path in DAEMONS)


def forward_rule(syslog: SyslogTarget) -> str:
    """The drop-in's text. Host and port come from a parsed target (no quotes possible)."""
    return (
        f"# Written by bootseed at boot from bootseed.syslog={syslog.url} on the kernel\n"
        "# command line; removed again on a boot without it.\n"
        f'*.* action(type="omfwd" target="{syslog.host}" port="{syslog.port}" '
        f'protocol="{syslog.protocol}" queue.type="LinkedList" queue.size="{QUEUE_SIZE}" '
        'action.resumeRetryCount="-1" action.resumeInterval="5")\n'
    )


def configure_forwarding(target: TargetRoot, syslog: SyslogTarget | None) -> list[Problem]:
    """Write (or, without a destination, remove) the drop-in; restart rsyslog if it runs."""
    problems: list[Problem] = []
    if syslog is None:
        if target.exists(FORWARD_DROPIN):
            target.unlink(FORWARD_DROPIN)
            problem = restart_if_running(target, "auto", WHERE)
            problems += [problem] if problem is not None else []
        return problems
    if not installed(target):
        problems.append(Problem(WHERE, "rsyslog is not installed: the system's own log "
                                "messages are not forwarded (journald cannot send to a "
                                "remote host); only bootseed's lines are", Level.WARNING))
        return problems
    text = forward_rule(syslog)
    if target.read_text(FORWARD_DROPIN, default="") == text:
        return problems
    target.write(FORWARD_DROPIN, text, mode=0o644)
    problem = restart_if_running(target, "auto", WHERE)
    return problems + ([problem] if problem is not None else [])


def restart_if_running(target: TargetRoot, command: str | Sequence[str],
                       where: str) -> Problem | None:
    """``auto``: restart rsyslog when it is active on the running system (rsyslog reads
    its configuration only at start); a list: that command, run in the target. In a
    ``--root`` target nothing runs and nothing is restarted."""
    if not target.is_host:
        return None
    try:
        if command == "auto":
            active = run_captured(target, ["systemctl", "is-active", "--quiet", SERVICE],
                                  timeout=RESTART_TIMEOUT)
            if active.returncode != 0:
                return None
            # --no-block: during boot the restart job must not wait on the agent's own unit.
            argv = ["systemctl", "restart", "--no-block", SERVICE]
        else:
            argv = list(command)
        run = run_captured(target, argv, timeout=RESTART_TIMEOUT)
    except TargetExecError as exc:
        return Problem(where, f"rsyslog not restarted: {exc}", Level.WARNING)
    if run.returncode != 0:
        tail = run.output.strip().splitlines()[-1:] or ["no output"]
        return Problem(where, f"{' '.join(argv)} exited with status {run.returncode}: "
                       f"{tail[0]}", Level.WARNING)
    return None
