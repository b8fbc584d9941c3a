"""Where the agent's log lines go: stderr (the journal under systemd),
``/var/log/bootseed.log`` (0640) in the target and, with ``bootseed.syslog=`` on the
kernel command line, that remote syslog destination (:mod:`bootseed.late.remotelog`),
all through the redactor."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from bootseed.contract.remotesyslog import SyslogTarget
from bootseed.late.redact import RedactingFilter, Redactor
from bootseed.late.target import TargetRoot

LOG_FILE = "/var/log/bootseed.log"
# The name Ubuntu's cloud images gave user script output; the old bootseed name stays as a
# link to it (bootseed.late.execute).
USER_OUTPUT_LOG = "/var/log/user_data.log"
USER_OUTPUT_LINK = "/var/log/user-data.log"
LOGGER = "bootseed"

# sd-daemon(3) priority prefixes, understood by journald on a stream stdout/stderr.
_JOURNAL_PRIORITY = {
    logging.DEBUG: "<7>",
    logging.INFO: "<6>",
    logging.WARNING: "<4>",
    logging.ERROR: "<3>",
    logging.CRITICAL: "<2>",
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = _JOURNAL_PRIORITY.get(record.levelno, "<6>")
        return prefix + super().format(record).replace("\n", "\n" + prefix)


@dataclass
class LogSetup:
    logger: logging.Logger
    handlers: list[logging.Handler] = field(default_factory=list)
    owned_streams: list[TextIO] = field(default_factory=list)

    def close(self) -> None:
        for handler in self.handlers:
            self.logger.removeHandler(handler)
            handler.close()
        for owned in self.owned_streams:
            owned.close()


def open_private_append(path: str | os.PathLike[str], mode: int) -> int:
    """Open for appending, created with ``mode``; an existing file is brought to ``mode``
    too, so a log that was once world-readable does not stay so."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)
    return fd


def setup_logging(
    target: TargetRoot,
    redactor: Redactor,
    *,
    stream: TextIO | None = None,
    verbose: bool = False,
    syslog: SyslogTarget | None = None,
) -> LogSetup:
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    setup = LogSetup(logger)
    redact = RedactingFilter(redactor)

    out = stream if stream is not None else sys.stderr
    console = logging.StreamHandler(out)
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    if os.environ.get("JOURNAL_STREAM") and stream is None:
        console.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        console.setFormatter(logging.Formatter("bootseed: %(levelname)s %(name)s: %(message)s"))
    console.addFilter(redact)
    logger.addHandler(console)
    setup.handlers.append(console)
    if syslog is not None:
        from bootseed.late.remotelog import RemoteSyslogHandler

        remote = RemoteSyslogHandler(syslog)
        remote.addFilter(redact)
        logger.addHandler(remote)
        setup.handlers.append(remote)

    path = target.real_path(LOG_FILE)
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = open_private_append(path, 0o640)
    except OSError as exc:
        logger.warning("cannot open %s: %s; logging to stderr only", path, exc)
        return setup
    log_stream = os.fdopen(fd, "a", encoding="utf-8")
    setup.owned_streams.append(log_stream)
    file_handler = logging.StreamHandler(log_stream)
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(
        "%(asctime)s bootseed[%(process)d] %(levelname)s %(name)s: %(message)s"))
    file_handler.addFilter(redact)
    logger.addHandler(file_handler)
    setup.handlers.append(file_handler)
    return setup
