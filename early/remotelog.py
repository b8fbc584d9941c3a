"""The early stage's lines to the ``bootseed.syslog=`` destination, while its network is up.

The initramfs has no system logger, so the stage speaks syslog itself (app-name
``bootseed-early``): from the moment the network is up until just before it is taken
down again, every line of the stage (its decisions, every step and problem of the
seed search, the closing summary) is sent. Lines from before the network was up are
kept (a few dozen at most) and sent first. Every send is bounded
(:class:`bootseed.contract.remotesyslog.SyslogSender`); a line that cannot go is
dropped, and the counts go into the ``early-stage`` action's network record.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from bootseed.contract.remotesyslog import (
    SEVERITY,
    SyslogSender,
    SyslogTarget,
    format_line,
)

APP_NAME = "bootseed-early"
# Lines kept before the network is up; the stage writes far fewer.
MAX_PENDING = 200
# After this many lines in a row fail, the rest are dropped without trying: a dead
# destination must not cost the boot a timeout per line.
MAX_FAILURES = 3
_UNNAMED = ("", "(none)", "localhost", "localhost.localdomain")


class EarlyRemoteLog:
    """Collects the stage's lines; sends them once :meth:`start` says the network is up."""

    def __init__(self, target: SyslogTarget, sender: SyslogSender | None = None) -> None:
        self.target = target
        self.sender = sender or SyslogSender(target)
        self.hostname = "-"
        self.pending: list[tuple[str, int]] = []
        self.started = False
        self.stopped = False
        self.failures = 0
        self.pid = os.getpid()

    def line(self, text: str, severity: int = SEVERITY["info"]) -> None:
        if self.stopped:
            return
        if not self.started:
            if len(self.pending) < MAX_PENDING:
                self.pending.append((text, severity))
            return
        self._send(text, severity)

    def start(self, address: str | None) -> None:
        """The network is up (``address``: ours, the hostname when the kernel has none)."""
        if self.started or self.stopped:
            return
        self.hostname = host_name(address)
        self.started = True
        pending, self.pending = self.pending, []
        for text, severity in pending:
            self._send(text, severity)

    def stop(self) -> dict[str, Any]:
        """The network goes down: nothing more is sent. Returns the counts for the report."""
        self.stopped = True
        self.sender.close()
        return {"target": self.target.url, "sent": self.sender.sent,
                "dropped": self.sender.dropped + len(self.pending),
                "error": self.sender.last_error}

    def _send(self, text: str, severity: int) -> None:
        if self.failures >= MAX_FAILURES:
            self.sender.dropped += 1
            return
        data = format_line(text, app_name=APP_NAME, hostname=self.hostname, procid=self.pid,
                           severity=severity)
        self.failures = 0 if self.sender.send(data) else self.failures + 1


def host_name(address: str | None) -> str:
    """The kernel's host name when it has one, else our address (RFC 5424 allows it)."""
    name = socket.gethostname()
    if name.lower() not in _UNNAMED:
        return name
    return address or "-"
