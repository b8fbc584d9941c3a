"""Device names of ``disk_setup``, ``fs_setup`` and ``bootseed_raid`` as the guest
knows them.

A name is looked up in ``device_aliases`` first (one step: ``data: /dev/vdb``), then
taken as ``mounts`` takes it: an EC2 name (``ephemeral0``..N, ``ebsN``, ``swap``) from
the meta-data's ``block-device-mapping`` translated to the guest's prefix (``sdb`` ->
``xvdb``/``vdb``), a short name (``vdc``) with ``/dev/`` added, or a ``/dev/..`` path.
``fs_setup`` also takes cloud-init's dotted form ``NAME.N`` for partition N.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootseed.late.modules.mounts import Devices
from bootseed.late.target import TargetRoot

_DOTTED = re.compile(r"(?P<base>.+)\.(?P<number>[0-9]+)")
_EPHEMERAL = re.compile(r"ephemeral([0-9]+)")


@dataclass(frozen=True)
class Resolved:
    given: str  # as the configuration says it
    device: str | None  # "/dev/vdb"; None when the name has no device in this instance
    mapped: str | None = None  # what the block-device-mapping says ("sdc"), if it is used

    @property
    def shown(self) -> str:
        """The name for a message: ``ephemeral1 (/dev/vdc)``, ``ephemeral1 (sdc)``."""
        if self.device is not None and self.device != self.given:
            return f"{self.given} ({self.device})"
        if self.device is None and self.mapped:
            return f"{self.given} ({self.mapped})"
        return self.given


class DiskNames:
    def __init__(self, target: TargetRoot, aliases: Mapping[str, Any],
                 block_device_mapping: Mapping[str, Any]) -> None:
        self.aliases = {str(k): str(v) for k, v in aliases.items() if isinstance(v, str)}
        self.devices = Devices(target, block_device_mapping)

    def resolve(self, name: str) -> Resolved:
        spec = self.aliases.get(name, name)
        if spec.startswith("/dev/"):
            return Resolved(name, spec)
        key = "ephemeral0" if spec == "ephemeral" else spec
        return Resolved(name, self.devices.resolve(spec), self.devices.mapping.get(key))

    def split_dotted(self, name: str) -> tuple[str, int | None]:
        """``ephemeral0.1`` -> (``ephemeral0``, 1); a name without a dot is whole."""
        match = _DOTTED.fullmatch(name)
        if match is None or match["base"].startswith("/"):
            return name, None
        return match["base"], int(match["number"])

    def ephemeral(self) -> list[str]:
        """Every ``ephemeralN`` the block-device-mapping names, by N."""
        numbered = [(int(m[1]), key) for key in self.devices.mapping
                    if (m := _EPHEMERAL.fullmatch(key))]
        return [key for _, key in sorted(numbered)]
