"""``analyze boot``: when the kernel started, when it handed over to systemd, and
when systemd started the agent, on the running system (as cloud-init's
``analyze boot`` reports them).

Times come from ``/proc/stat`` (``btime``, the kernel's start) and systemd's
monotonic timestamps (``UserspaceTimestampMonotonic``, the unit's
``InactiveExitTimestampMonotonic``), turned into wall-clock time by adding them
to ``btime``; the agent's own start is its status' first stage start.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

AGENT_UNIT = "bootseed.service"


@dataclass(frozen=True)
class BootRecord:
    """Wall-clock seconds since the epoch; None where the system did not say."""

    kernel_started: float
    kernel_ended: float | None
    agent_activated: float | None
    agent_started: float | None

    def lines(self) -> list[str]:
        def at(value: float | None) -> str:
            if value is None:
                return "unknown"
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) + \
                f".{int(value % 1 * 1e6):06d} UTC"

        def between(start: float | None, end: float | None) -> str:
            return "unknown" if start is None or end is None else f"{end - start:.6f}"

        return ["-- Most Recent Boot Record --",
                f"    Kernel Started at: {at(self.kernel_started)}",
                f"    Kernel ended boot at: {at(self.kernel_ended)}",
                f"    Kernel time to boot (seconds): "
                f"{between(self.kernel_started, self.kernel_ended)}",
                f"    bootseed activated by systemd at: {at(self.agent_activated)}",
                "    Time between Kernel end boot and bootseed activation (seconds): "
                f"{between(self.kernel_ended, self.agent_activated)}",
                f"    bootseed start: {at(self.agent_started)}"]


def boot_time(proc: Path) -> float:
    """The kernel's start (``btime``); OSError or ValueError when /proc does not say."""
    for line in (proc / "stat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "btime":
            return float(value)
    raise ValueError(f"{proc}/stat has no btime")


def systemd_monotonic(prop: str, unit: str | None = None) -> float | None:
    """A systemd monotonic timestamp in seconds; None when unset or systemd is not there."""
    argv = ["systemctl", "show", "-P", prop, *([unit] if unit else [])]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                             check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out) / 1e6 if out.isdigit() and int(out) else None


def record(btime: float, userspace: float | None, activated: float | None,
           agent_started: float | None) -> BootRecord:
    """Monotonic seconds (since boot) made wall-clock by the boot time."""
    return BootRecord(btime, None if userspace is None else btime + userspace,
                      None if activated is None else btime + activated, agent_started)


def gather(proc: Path, agent_started: float | None) -> BootRecord:
    return record(boot_time(proc), systemd_monotonic("UserspaceTimestampMonotonic"),
                  systemd_monotonic("InactiveExitTimestampMonotonic", AGENT_UNIT),
                  agent_started)
