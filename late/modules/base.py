"""The contract between the runner and the cloud-config modules.

Each module file under ``bootseed.late.modules`` defines one ``MODULE =
ModuleSpec(...)``: its cloud-init name, the stage it belongs to, its default
frequency, its JSON-schema fragment (``{"properties": {key: schema}}`` for the
top-level cloud-config keys it owns, optionally ``"$defs"``; the runner
assembles all fragments into one schema) and ``handle(ctx)``. ``handle`` raises on failure; the
runner records the exception and goes on with the next module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.target import TargetRoot


class Frequency(StrEnum):
    PER_INSTANCE = "per-instance"
    PER_BOOT = "per-boot"
    PER_ONCE = "per-once"

    @classmethod
    def parse(cls, text: str) -> Frequency:
        """Accept cloud-init's spellings too: ``always``, ``once``, ``instance``."""
        aliases = {
            "always": cls.PER_BOOT,
            "per-always": cls.PER_BOOT,
            "once": cls.PER_ONCE,
            "instance": cls.PER_INSTANCE,
            "once-per-instance": cls.PER_INSTANCE,
        }
        key = text.strip().lower().replace("_", "-")
        if key in aliases:
            return aliases[key]
        return cls(key)


class Stage(StrEnum):
    """Which cloud-init module list a module belongs to by default."""

    INIT = "init"  # cloud_init_modules
    CONFIG = "config"  # cloud_config_modules
    FINAL = "final"  # cloud_final_modules


@dataclass
class InstanceInfo:
    """What the seed says about this instance, normalised."""

    instance_id: str
    local_hostname: str | None = None
    public_keys: list[str] = field(default_factory=list)
    launch_index: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "none"


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
    # One bad item of a module's config is reported here, and the module goes
    # on with the rest; the runner copies these into the status.
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    stage: Stage
    frequency: Frequency
    schema: dict[str, Any]
    handle: Callable[[ModuleContext], None]
    # Top-level cloud-config keys that make this module worth running; an empty
    # tuple means it always runs (e.g. ssh host keys).
    activate_keys: tuple[str, ...] = ()
    # Other names a cloud-config module list may use for this module (cloud-init's
    # spellings); ``-`` and ``_`` and a ``cc_`` prefix are already treated as equal.
    aliases: tuple[str, ...] = ()
