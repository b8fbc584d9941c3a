"""The contract between the runner and the cloud-config modules.

Each module file under ``bootseed.late.modules`` defines one ``MODULE =
ModuleSpec(...)``: its cloud-init name, the stage it belongs to, its order
within that stage, its default frequency, its JSON-schema fragment
(``{"properties": {key: schema}}`` for the top-level cloud-config keys it owns,
optionally ``"$defs"``; the runner assembles all fragments into one schema, and
each key has one owner) and ``handle(ctx)``. ``handle`` raises on failure; the
runner records the exception and goes on with the next module.

The spec is the only place these facts are written: ``python -m
bootseed.late.specindex --write`` regenerates ``late/modindex.py`` and the
module table in ``docs/modules.md`` from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.actions import Action
from bootseed.contract.cmdline import KernelParams
from bootseed.contract.problems import Problem
from bootseed.late.model import Frequency, InstanceInfo, ModuleFacts, Stage
from bootseed.late.target import TargetRoot

# The shared types live in bootseed.late.model; they are re-exported here because
# module files take everything they need from this one contract file.
__all__ = ["Frequency", "InstanceInfo", "ModuleContext", "ModuleSpec", "Stage"]


@dataclass
class ModuleContext:
    """Everything a module may use; modules reach nothing else."""

    name: str
    cfg: dict[str, Any]
    target: TargetRoot
    instance: InstanceInfo
    instance_dir: Path
    log: logging.Logger
    console: Callable[[str], None]
    add_secret: Callable[[str], None]
    boot_uptime: Callable[[], float]
    # What the initramfs recorded in /run/bootseed (read by the runner, never by a module).
    recorded_actions: tuple[Action, ...] = ()
    # One bad item of a module's config is reported here, and the module goes
    # on with the rest; the runner copies these into the status.
    problems: list[Problem] = field(default_factory=list)
    # The seed's raw payloads as cached (``network-config``, ``meta-data`` ...).
    payloads: Mapping[str, bytes] = field(default_factory=dict)
    # The running kernel's parameters; None when the target is not the running system.
    kernel: KernelParams | None = None
    # A module that is not idempotent calls this just before its first effect that must
    # not be repeated (the first user script starts); a crash after it makes the next
    # run report the module instead of starting it again. A no-op for other modules.
    begin_unrepeatable: Callable[[], None] = lambda: None
    # Set by the runner: starts (what, work) in a thread; see run_beside.
    background: Callable[[str, Callable[[], list[Problem]]], None] | None = None

    def run_beside(self, what: str, work: Callable[[], list[Problem]]) -> None:
        """Run ``work`` beside the rest of the boot: READY=1 and the later modules do not
        wait for it; the runner joins it before the run's status is final, reports the
        problems it returns as this module's, and marks the module done only once it
        has finished. Without a runner (``background`` unset) it runs here and now."""
        if self.background is None:
            self.problems.extend(work())
        else:
            self.background(what, work)


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    stage: Stage
    # Place in the stage's default module list: lower runs first. Written in steps
    # of 10 so a new module slots in between; late/modindex.py, the registry's
    # default order and docs/modules.md are generated from it.
    order: int = field(kw_only=True)
    frequency: Frequency
    schema: dict[str, Any]
    handle: Callable[[ModuleContext], None]
    # Top-level cloud-config keys that make this module worth running; an empty
    # tuple means it always runs (e.g. ssh host keys).
    activate_keys: tuple[str, ...] = ()
    # Other names a cloud-config module list may use for this module (cloud-init's
    # spellings); ``-`` and ``_`` and a ``cc_`` prefix are already treated as equal.
    aliases: tuple[str, ...] = ()
    # False for modules whose effects add up when repeated (user scripts run again): a
    # crash after the module called ``ctx.begin_unrepeatable`` must not make the next
    # run start it a second time.
    idempotent: bool = True

    def facts(self) -> ModuleFacts:
        """What planning needs without the code; ``modindex`` holds these per file."""
        return ModuleFacts(self.name, self.stage, self.order, self.frequency,
                           self.activate_keys, self.aliases)
