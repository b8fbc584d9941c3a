"""What every seed source shares: the search context and how a seed is assembled."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.contract.seedcache import RECORDED_LEVEL, Seed, StepTiming
from bootseed.early.budget import Budget


class SourceError(Exception):
    """A source that is present but unusable; ``where`` names the file, URL or device."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass
class Step:
    """A timed step; the body sets ``outcome`` ("ok", "none", "error", ...)."""

    name: str
    outcome: str = "ok"


@dataclass
class Context:
    """State one discovery run threads through the sources."""

    budget: Budget
    request_timeout: float = 2.0
    debug: bool = False
    stage: str = "early"
    problems: list[Problem] = field(default_factory=list)
    timings: list[StepTiming] = field(default_factory=list)
    # Where every line also goes (the remote syslog while the early network is up),
    # debug or not.
    sink: Callable[[str], None] | None = None

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, RECORDED_LEVEL))
        self.log(f"problem: {where}: {message}")

    def log(self, message: str) -> None:
        if self.sink is not None:
            self.sink(message)
        if self.debug:
            print(f"bootseed: {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        start = time.monotonic()
        try:
            yield step
        except BaseException:
            step.outcome = "error"
            raise
        finally:
            ms = (time.monotonic() - start) * 1000.0
            self.timings.append(StepTiming(name=name, duration_ms=round(ms, 3),
                                           outcome=step.outcome))
            self.log(f"step {name}: {step.outcome} in {ms:.1f} ms")


def make_seed(source: str, location: str, metadata: dict[str, Any],
              payloads: dict[str, bytes], found: dict[str, str]) -> Seed:
    iid = metadata.get("instance-id")
    return Seed(
        source=source,
        location=location,
        instance_id=str(iid) if iid is not None else None,
        metadata=metadata,
        payloads=payloads,
        found=found,
    )
