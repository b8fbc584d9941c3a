"""Device names of ``mounts``, ``disk_setup``, ``fs_setup`` and ``bootseed_raid`` as the
guest knows them.

:class:`Devices` is ``mounts``' reading (EC2 names, short names, ``LABEL=``/``UUID=``
presence). For the others (:class:`DiskNames`) a name is looked up in ``device_aliases``
first (one step: ``data: /dev/vdb``), then read as ``mounts`` reads it: an EC2 name
(``ephemeral0``..N, ``ebsN``, ``swap``) from the meta-data's ``block-device-mapping``
translated to the guest's prefix (``sdb`` -> ``xvdb``/``vdb``), a short name (``vdc``)
with ``/dev/`` added, or a ``/dev/..`` path. ``fs_setup`` also takes cloud-init's dotted
form ``NAME.N`` for partition N.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootseed.late.target import TargetRoot

_SHORT_NAME = re.compile(r"(xvd|sd|hd|vd)[a-z]+[0-9]*")
_META_NAMED = ("ami", "root", "swap")
_META_NUMBERED = re.compile(r"(ephemeral|ebs)[0-9]+")
_DISK_PREFIXES = ("sd", "xvd", "vd", "hd")

_DOTTED = re.compile(r"(?P<base>.+)\.(?P<number>[0-9]+)")
_EPHEMERAL = re.compile(r"ephemeral([0-9]+)")


def is_meta_name(name: str) -> bool:
    return name in _META_NAMED or _META_NUMBERED.fullmatch(name) is not None


class Devices:
    """Device names of the configuration as the guest knows them."""

    def __init__(self, target: TargetRoot, block_device_mapping: Mapping[str, Any]) -> None:
        self.target = target
        self.mapping = {str(k): str(v) for k, v in block_device_mapping.items()
                        if isinstance(v, str | int)}

    def exists(self, name: str) -> bool:
        return (self.target.exists(f"/sys/class/block/{name}")
                or self.target.exists(f"/dev/{name}"))

    def guest_name(self, name: str) -> str | None:
        """``name`` (``sdb``) as the guest calls it (``sdb``, ``xvdb``, ``vdb`` or
        ``hdb``, the first present); ``None`` when none is present."""
        if self.exists(name):
            return name
        for prefix in _DISK_PREFIXES:
            if name.startswith(prefix):
                rest = name[len(prefix):]
                for other in _DISK_PREFIXES:
                    if other != prefix and self.exists(other + rest):
                        return other + rest
        return None

    def resolve(self, spec: str) -> str | None:
        """The fstab device for ``spec``; ``None`` for an EC2 name with no present device."""
        if spec == "ephemeral":
            spec = "ephemeral0"
        if is_meta_name(spec):
            mapped = self.mapping.get(spec)
            if not mapped:
                return None
            found = self.guest_name(mapped.removeprefix("/dev/"))
            return f"/dev/{found}" if found else None
        if _SHORT_NAME.fullmatch(spec):
            return f"/dev/{self.guest_name(spec) or spec}"
        return spec

    def present(self, device: str) -> bool | None:
        """Whether a device exists now; ``None`` when that cannot be known (network)."""
        if device.startswith("/dev/"):
            return self.target.exists(device)
        for tag, folder in (("LABEL=", "by-label"), ("UUID=", "by-uuid")):
            if device.startswith(tag):
                value = device[len(tag):]
                if "/" in value or value in ("", ".", ".."):
                    return False
                return self.target.exists(f"/dev/disk/{folder}/{value}")
        if device.startswith("/"):
            return self.target.exists(device)  # a swap file
        return None


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
