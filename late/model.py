"""The late stage's shared vocabulary: how often a module runs, which stage it
belongs to, what the seed says about the instance, and what planning knows about
a module before importing it.

Library code (state, hostnames, the registry, the generated ``modindex``) takes
these from here, not from the plugin folder ``late/modules/``, whose
``base.py`` holds only the module contract (``ModuleSpec``, ``ModuleContext``).
Importing this file must stay cheap: the registry's lazy path loads it at boot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True)
class ModuleFacts:
    """What planning needs about a module, without its code: the part of its
    ``ModuleSpec`` that ``modindex`` records (``ModuleSpec.facts()``)."""

    name: str
    stage: Stage
    # Place in the stage's default list: lower runs first, ties by name.
    order: int
    frequency: Frequency
    activate_keys: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
