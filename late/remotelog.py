"""The late agent's own log lines to the ``bootseed.syslog=`` destination.

A logging handler that never waits on the network: records (already redacted by the
handler's filter) go into a bounded queue, and one daemon thread sends them
(:class:`bootseed.contract.remotesyslog.SyslogSender`). The local stage runs before the
network is up, so a line that cannot go yet is kept and retried (every
:data:`RETRY_S` seconds) instead of dropped; only a full queue drops lines, counted.
At the end of the run :meth:`RemoteSyslogHandler.close` gives the thread
:data:`FLUSH_S` seconds to send what is left.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading

from bootseed.contract.remotesyslog import SEVERITY, SyslogSender, SyslogTarget, format_line

APP_NAME = "bootseed"
MAX_QUEUED = 2000
RETRY_S = 2.0
FLUSH_S = 5.0

_SEVERITY_OF_LEVEL = {
    logging.DEBUG: SEVERITY["debug"],
    logging.INFO: SEVERITY["info"],
    logging.WARNING: SEVERITY["warning"],
    logging.ERROR: SEVERITY["err"],
    logging.CRITICAL: SEVERITY["crit"],
}


class RemoteSyslogHandler(logging.Handler):
    def __init__(self, target: SyslogTarget, sender: SyslogSender | None = None,
                 hostname: str | None = None, retry_s: float = RETRY_S) -> None:
        super().__init__(logging.INFO)
        self.target = target
        self.sender = sender or SyslogSender(target)
        self.hostname = hostname
        self.retry_s = retry_s
        self.queued: collections.deque[bytes] = collections.deque()
        self.overflowed = 0
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._drain, name="remote-syslog", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            severity = _SEVERITY_OF_LEVEL.get(record.levelno, SEVERITY["info"])
            line = format_line(f"{record.name}: {self.format(record)}", app_name=APP_NAME,
                               hostname=self.hostname or socket.gethostname(),
                               procid=os.getpid(), severity=severity)
        except Exception:
            self.handleError(record)
            return
        with self._wake:
            if len(self.queued) >= MAX_QUEUED:
                self.overflowed += 1
                return
            self.queued.append(line)
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(FLUSH_S)
        self.sender.close()
        super().close()

    @property
    def pending(self) -> int:
        with self._wake:
            return len(self.queued)

    def _drain(self) -> None:
        while True:
            with self._wake:
                while not self.queued and not self._closing:
                    self._wake.wait()
                if not self.queued:
                    return
                line = self.queued[0]
            if self.sender.send(line):
                with self._wake:
                    self.queued.popleft()
                continue
            with self._wake:
                if self._closing:
                    return  # nobody to wait for; what is left stays unsent
                self._wake.wait(self.retry_s)
