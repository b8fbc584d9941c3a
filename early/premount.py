"""The initramfs stage: find the seed before the real root is mounted, cache it in /run.

Why ``init-premount`` (initramfs-tools) / ``pre-mount`` (dracut): udev has loaded the
NIC and disc drivers by then, ``/run`` is the tmpfs that is later moved onto the real
root, and the root is not mounted yet — which rescue / root take-over (decided from
the seed) need. Nothing here needs the real root.

Order: read the command line; ask discovery whether the seed needs the network; only
then bring it up (``bootseed.early.net``); discover and fetch the seed; take the
network down again; write ``/run/bootseed``. Every decision and the stage's own
timings go into ``seed.json`` (``timings`` entries named ``early.*`` and one
``actions`` entry ``{"action": "early-stage", ...}``).

Never blocks the boot: everything runs under a watchdog alarm and a top-level catch;
a failure is written to ``seed.json`` (as a problem) and to the console, and the
process exits 0 so the initramfs carries on with the normal root.

With ``bootseed.syslog=`` on the command line the stage's lines also go to that
syslog destination while the network is up (:mod:`bootseed.early.remotelog`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from bootseed.contract import __version__
from bootseed.contract.actions import EarlyStage
from bootseed.contract.problems import Level, Problem
from bootseed.contract.seedcache import DEFAULT_SEED_DIR, RECORDED_LEVEL, Seed, StepTiming

if TYPE_CHECKING:
    from bootseed.contract.cmdline import NetParams
    from bootseed.early.remotelog import EarlyRemoteLog

WATCHDOG_MARGIN_S = 15.0
DEFAULT_DISCOVERY_BUDGET_S = 60.0


class WatchdogExpired(BaseException):
    """Raised from the alarm handler; a BaseException so no ``except Exception`` inside
    discovery swallows it on its way to the top."""


@dataclass
class PremountOptions:
    cmdline: str | None = None
    out_dir: str = DEFAULT_SEED_DIR
    root: str = "/"
    proc: str = "/proc"
    sys_class_net: str = "/sys/class/net"
    resolv_conf: str | None = None
    net_backend: str = "auto"
    carrier_timeout: float = 5.0
    dhcp_timeout: float = 15.0
    ra_timeout: float = 3.0
    kmsg: bool = False
    # Test hooks: where DMI is read and whether block devices are scanned.
    dmi_dir: str | None = None
    scan_discs: bool = True
    ec2_endpoints: list[str] | None = None


@dataclass
class Report:
    """Decisions and figures of one run, written as the ``early-stage`` action."""

    started_uptime: float | None
    process_start_uptime: float | None
    entropy_ready: bool | None = None
    decision: str = ""
    network: dict[str, Any] | None = None
    error: str | None = None
    timings: list[StepTiming] = field(default_factory=list)

    def step(self, name: str, started: float, outcome: str = "ok") -> None:
        self.timings.append(StepTiming(name=f"early.{name}",
                                       duration_ms=_ms_since(started), outcome=outcome))


def run(options: PremountOptions) -> Seed | None:
    """One early-stage run. Returns the seed written, or None when turned off."""
    report = Report(started_uptime=_uptime(options.proc),
                    process_start_uptime=_process_start_uptime(options.proc))
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    seed: Seed | None = None
    try:
        seed = _run(options, report)
    except (Exception, WatchdogExpired) as exc:
        report.error = f"{type(exc).__name__}: {exc}{_where(exc)}"
        seed = Seed(source="none", stage="early")
        seed.problems.append(Problem("early stage", report.error, RECORDED_LEVEL))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if seed is None:
        return None
    report.step("total", started, "error" if report.error else "ok")
    _finish(seed, report, options)
    return seed


def _run(options: PremountOptions, report: Report) -> Seed | None:
    # A generous alarm until the real budget is known: reading the command line must
    # not be able to hang the boot either.
    signal.alarm(int(WATCHDOG_MARGIN_S))
    t = time.monotonic()
    report.entropy_ready = _entropy_ready()
    cmdline = options.cmdline if options.cmdline is not None else _read_cmdline(options.proc)
    from bootseed.contract.cmdline import parse as parse_cmdline

    params = parse_cmdline(cmdline)
    report.step("cmdline", t)
    if not params.early.enabled:
        return None

    t = time.monotonic()
    from bootseed.early.discover import DiscoveryConfig, discover, needs_network

    config = DiscoveryConfig.from_system(root=options.root, cmdline=cmdline)
    if options.dmi_dir is not None:
        config.dmi_dir = options.dmi_dir
    config.scan_discs = options.scan_discs
    if options.ec2_endpoints is not None:
        config.ec2_endpoints = list(options.ec2_endpoints)
    config.stage = "early"
    remote: EarlyRemoteLog | None = None
    if params.syslog is not None:
        from bootseed.early.remotelog import EarlyRemoteLog

        remote = EarlyRemoteLog(params.syslog)
        config.log_sink = remote.line
        remote.line(f"bootseed-early {__version__}: looking for the seed")
    report.step("setup", t)
    budget = (config.total_budget or params.seed.timeout
              or DEFAULT_DISCOVERY_BUDGET_S)
    signal.alarm(int(options.carrier_timeout + options.dhcp_timeout + options.ra_timeout + budget
                     + WATCHDOG_MARGIN_S))

    t = time.monotonic()
    need = needs_network(config)
    report.step("needs-network", t)
    problems: list[Problem] = []
    net_session = None
    net_up = False
    if not need:
        report.decision = "network not needed (seed is local or absent): no network touched"
    elif params.net.off:
        report.decision = "network needed but bootseed.net=off: not brought up"
        problems.append(Problem("kernel command line: bootseed.net",
                                "the seed needs the network but bootseed.net=off", RECORDED_LEVEL))
    else:
        net_session, net_problem = _bring_up(options, params.net, report)
        if net_problem is not None:
            problems.append(net_problem)
        # An ip= typo is a problem too, but the network came up anyway.
        net_up = net_session is not None and (net_problem is None
                                              or net_problem.where != "early network")
    if remote is not None:
        remote.line(report.decision)
        if net_up and net_session is not None:
            remote.start(net_session[1].address)
        else:
            problems.append(Problem("kernel command line: bootseed.syslog",
                                    "the early stage had no network up; its lines were not "
                                    "sent (the late agent's are)", Level.NOTE))

    try:
        t = time.monotonic()
        seed = discover(config)
        report.step("discover", t, "ok" if seed.has_seed else "no-seed")
        if remote is not None:
            remote.line(_summary(seed, report, discovered=True))
    finally:
        syslog = remote.stop() if remote is not None else None
        if net_session is not None:
            t = time.monotonic()
            backend, state = net_session
            try:
                from bootseed.early.net import tear_down

                tear_down(state, backend)
                report.step("network-down", t)
            except Exception as exc:
                state.teardown = f"failed: {exc}"
                report.step("network-down", t, "error")
            report.network = state.as_dict()
            if syslog is not None:
                report.network["syslog"] = syslog
            close = getattr(backend, "close", None)
            if close is not None:
                close()
    seed.problems[:0] = problems
    return seed


def _bring_up(options: PremountOptions, params: NetParams,
              report: Report) -> tuple[tuple[Any, Any] | None, Problem | None]:
    from bootseed.early import net
    from bootseed.early.ipconfig import select_ip

    t = time.monotonic()
    ip, errors = select_ip(params.ip_values)
    problem: Problem | None = None
    if errors:
        problem = Problem("kernel command line: ip=", "; ".join(errors), RECORDED_LEVEL)
    request = net.NetRequest(ip=ip, device=params.device,
                             carrier_timeout=options.carrier_timeout,
                             dhcp_timeout=options.dhcp_timeout,
                             ra_timeout=options.ra_timeout,
                             sys_class_net=options.sys_class_net,
                             resolv_conf=options.resolv_conf, backend=options.net_backend)
    how = f"ip={ip.raw}" if ip is not None else "DHCP on the first link with carrier"
    try:
        backend = net.make_backend(options.net_backend)
    except Exception as exc:
        report.step("network-up", t, "error")
        report.decision = f"network needed ({how}) but no backend: {exc}"
        return None, Problem("early network", str(exc), RECORDED_LEVEL)
    try:
        state = net.bring_up(request, backend)
    except net.NetworkError as exc:
        report.step("network-up", t, "error")
        report.decision = f"network needed ({how}); bring-up failed"
        report.network = exc.state.as_dict()
        message = str(exc) if problem is None else f"{exc} ({problem.message})"
        return (backend, exc.state), Problem("early network", message, RECORDED_LEVEL)
    report.step("network-up", t)
    report.decision = f"network needed: {how} via {state.backend} on {state.interface}"
    return (backend, state), problem


def _finish(seed: Seed, report: Report, options: PremountOptions) -> None:
    seed.stage = "early"
    seed.created = seed.created or time.time()
    ended = _uptime(options.proc)
    action = EarlyStage(
        decision=report.decision,
        network=report.network,
        entropy_ready=report.entropy_ready,
        python=sys.version.split()[0],
        uptime_start=report.started_uptime,
        uptime_end=ended,
        process_start_uptime=report.process_start_uptime,
        wall_ms=(round((ended - report.process_start_uptime) * 1000.0, 1)
                 if ended is not None and report.process_start_uptime is not None else None),
        error=report.error,
    )
    seed.timings[:0] = report.timings
    seed.actions.append(action)
    summary = _summary(seed, report)
    try:
        from bootseed.contract.seedcache import write_seed_cache

        write_seed_cache(seed, options.out_dir)
    except Exception as exc:
        summary += f"; cannot write {options.out_dir}: {type(exc).__name__}: {exc}"
    _console(summary, options.kmsg)


def _summary(seed: Seed, report: Report, discovered: bool = False) -> str:
    if report.error:
        return f"bootseed-early: error: {report.error}; boot continues"
    what = f"seed from {seed.source}" if seed.has_seed else "no seed"
    if seed.has_seed and seed.instance_id:
        what += f" (instance {seed.instance_id})"
    extra = f", {len(seed.problems)} problem(s)" if seed.problems else ""
    if discovered:  # said while the network is still up, before the total is known
        return f"bootseed-early: {what}{extra}; the boot continues"
    total = next((t.duration_ms for t in report.timings if t.name == "early.total"), None)
    return f"bootseed-early: {what} in {total} ms{extra}"


def _console(line: str, kmsg: bool) -> None:
    print(line, file=sys.stderr, flush=True)
    if kmsg:
        # The kernel log survives into the real root's journal; stderr does not.
        try:
            with open("/dev/kmsg", "w", encoding="utf-8") as handle:
                handle.write(f"<5>{line}\n")
        except OSError:
            pass


def _where(exc: BaseException) -> str:
    """Where it happened (innermost frame), so a report from a boot is actionable."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise WatchdogExpired("the early stage ran past its watchdog; abandoned")


def _read_cmdline(proc: str) -> str:
    path = Path(proc) / "cmdline"
    if not path.exists() and proc == "/proc":
        # initramfs init mounts /proc before any script; if something unmounted it,
        # mount it again rather than losing the command line.
        import subprocess

        subprocess.run(["mount", "-t", "proc", "proc", "/proc"], capture_output=True,
                       timeout=5, check=False)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RuntimeError(f"cannot read {path}: {exc.strerror}") from exc


def _entropy_ready() -> bool | None:
    """Whether the kernel RNG is initialised: a False here explains a slow TLS start.

    ``os.urandom`` blocks until it is (Linux ≥ 5.18 gets there within about a second via
    jitter entropy), so nothing is done about it beyond recording it.
    """
    try:
        os.getrandom(1, os.GRND_NONBLOCK)
    except BlockingIOError:
        return False
    except (AttributeError, OSError):
        return None
    return True


def _uptime(proc: str) -> float | None:
    try:
        return float((Path(proc) / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _process_start_uptime(proc: str) -> float | None:
    """When this process started, in seconds since boot (field 22 of /proc/self/stat)."""
    try:
        stat = (Path(proc) / "self" / "stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)
