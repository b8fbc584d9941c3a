"""Work that runs beside the boot's critical path, joined before the run's status is final.

Two kinds: schema validation of the processed cloud-config (advisory: no module waits
for its verdict, and under TCG it costs seconds on a first boot), started once READY=1
is out; and a module's slow part that what follows READY=1 does not need (RSA host key
generation: sshd starts with the keys already in place and is restarted once the RSA
key is written), started by the module itself. The runner joins every job before the
status is final and puts the problems found where inline work would have put them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bootseed.contract.problems import Problem

log = logging.getLogger("bootseed.background")


class BackgroundJob:
    """One piece of work: ``start`` it (at most once), ``join`` for its problems.

    ``where`` and ``what`` name the work in the problem reported when it raises."""

    def __init__(self, work: Callable[[], list[Problem]], *, where: str, what: str) -> None:
        self._work = work
        self.where = where
        self.what = what
        self._thread: threading.Thread | None = None
        self._problems: list[Problem] = []
        self.failed = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"bootseed-{self.where}",
                                            daemon=True)
            self._thread.start()

    def join(self) -> list[Problem]:
        """The problems found; runs the work here if it was never started."""
        if self._thread is None:
            self._run()
        else:
            self._thread.join()
        return self._problems

    def _run(self) -> None:
        try:
            self._problems = self._work()
        except Exception as exc:  # the work's own failure must not stop the boot
            log.exception("%s: %s failed", self.where, self.what)
            self.failed = True
            self._problems = [Problem(
                self.where, f"{self.what}: {type(exc).__name__}: {exc}")]
