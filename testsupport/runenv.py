"""Plant a seed in a temp target root and run the late agent on it."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.seedcache import Seed, write_seed_cache
from bootseed.late.modules.base import ModuleSpec
from bootseed.late.runner import Runner, RunOptions
from bootseed.late.stages import ORDER, RunStage
from bootseed.late.status import RunStatus


def plant_seed(
    root: Path,
    user_data: str | bytes | None,
    instance_id: str | None = "i-0001",
    *,
    source: str = "nocloud",
    vendor_data: str | bytes | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    payloads: dict[str, bytes] = {}
    for name, value in (("user-data", user_data), ("vendor-data", vendor_data)):
        if value is not None:
            payloads[name] = value.encode() if isinstance(value, str) else value
    meta = {"instance-id": instance_id, "local-hostname": "seeded"} if instance_id else {}
    meta.update(metadata or {})
    seed = Seed(source=source, location="test", instance_id=instance_id, metadata=meta,
                payloads=payloads if source != "none" else {})
    write_seed_cache(seed, root / "run" / "bootseed")


@dataclass
class Run:
    status: RunStatus
    console: list[str]
    log: str
    runner: Runner


@dataclass
class Agent:
    root: Path
    extra: tuple[ModuleSpec, ...] = ()
    console: list[str] = field(default_factory=list)

    def run(self, stages: tuple[RunStage, ...] = ORDER, **kw: Any) -> Run:
        stream = io.StringIO()
        self.console.clear()
        opts = RunOptions(root=self.root, stages=stages, network_timeout=0,
                          console=self.console.append, log_stream=stream, verbose=True,
                          extra_modules=self.extra, **kw)
        runner = Runner(opts)
        status = runner.run()
        return Run(status, list(self.console), stream.getvalue(), runner)


def module(run: Run, name: str) -> Any:
    found = [m for m in run.status.modules if m.name == name]
    assert len(found) == 1, (name, [m.name for m in run.status.modules])
    return found[0]


def run_cli_first_boot(main: Callable[[list[str]], int], root: Path, user_data: str) -> None:
    """Plant a NoCloud seed carrying ``user_data`` in ``root`` and run every stage through
    a command-line entry point (``bootseed`` or the ``cloud-init`` compatibility
    command's ``main``), as a first boot would; the console goes beside ``root``."""
    plant_seed(root, user_data, metadata={"region": "lab-1"})
    assert main(["run", "--root", str(root), "--network-timeout", "0",
                 "--console", str(root.parent / "console.txt")]) == 0
