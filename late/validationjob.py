"""Schema validation of the processed cloud-config, off the boot's critical path.

Validation is advisory: no module waits for its verdict, and under TCG it costs
seconds on a first boot (jsonschema's import and every module's schema). The
runner therefore starts it in a thread once READY=1 is out and joins it before
the status is final; the problems found go into the status where inline
validation would have put them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bootseed.contract.problems import Problem

log = logging.getLogger("bootseed.schema")


class ValidationJob:
    """One validation run: ``start`` it (at most once), ``join`` for its problems."""

    def __init__(self, validate: Callable[[], list[Problem]]) -> None:
        self._validate = validate
        self._thread: threading.Thread | None = None
        self._problems: list[Problem] = []

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bootseed-validate",
                                            daemon=True)
            self._thread.start()

    def join(self) -> list[Problem]:
        """The problems found; runs the validation here if it was never started."""
        if self._thread is None:
            self._run()
        else:
            self._thread.join()
        return self._problems

    def _run(self) -> None:
        try:
            self._problems = self._validate()
        except Exception as exc:  # the validator's own failure must not stop the boot
            log.exception("validation failed")
            self._problems = [Problem(
                "schema", f"cloud-config not validated: {type(exc).__name__}: {exc}")]

