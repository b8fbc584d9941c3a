"""What the initramfs did, as typed records: the ``actions`` of ``seed.json`` and
``rootswitch.json``.

The early stage writes one record per decision (the early stage's own run, the root
switch verdict, a rescue boot or a skipped rescue volume, a take-over, an overlay,
a volume to mount or whose script to run); the late agent reads them back through
``bootseed.contract.seedcache`` and hands them to its modules. Every record is a
JSON object with an ``action`` key naming its kind; the file format is unchanged
from the untyped dicts these records replace.

Reading is strict: an unknown kind, an unknown key or a value of the wrong type is
an ``ActionError`` naming the record (``actions[2] (volume-mount)``) and the key.
Keys of optional values may be absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

_ABSENT: Any = object()


class ActionError(ValueError):
    """A recorded action that is not one of the kinds below, or not in their shape."""


class _Fields:
    """Typed reads of one JSON object; remembers which keys were read."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.read: set[str] = {"action"}

    def _get(self, key: str, default: Any) -> Any:
        self.read.add(key)
        value = self.data.get(key, _ABSENT)
        if value is _ABSENT:
            if default is _ABSENT:
                raise ActionError(f"{self.where}: '{key}' is missing")
            return default
        return value

    def _bad(self, key: str, expected: str, value: Any) -> ActionError:
        return ActionError(f"{self.where}: '{key}' must be {expected}, got "
                           f"{type(value).__name__}")

    def text(self, key: str, default: Any = _ABSENT) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "a string", value)
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "a string or null", value)
        return value

    def optional_number(self, key: str) -> float | None:
        value = self._get(key, None)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._bad(key, "a number or null", value)
        return float(value)

    def optional_flag(self, key: str) -> bool | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, bool):
            raise self._bad(key, "true, false or null", value)
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings", value)
        return tuple(value)

    def optional_object(self, key: str) -> dict[str, Any] | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, dict):
            raise self._bad(key, "an object or null", value)
        return value

    def volume(self) -> VolumeRef:
        return VolumeRef(device=self.text("device"), fstype=self.optional_text("fstype"),
                         label=self.optional_text("label"), uuid=self.optional_text("uuid"))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            raise ActionError(f"{self.where}: unknown key(s) {', '.join(map(repr, unknown))}")


@dataclass(frozen=True)
class VolumeRef:
    """A filesystem as the early stage saw it; the device name may differ next boot,
    the UUID does not."""

    device: str
    fstype: str | None = None
    label: str | None = None
    uuid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "fstype": self.fstype, "label": self.label,
                "uuid": self.uuid}

    @classmethod
    def from_dict(cls, data: Any, where: str = "volume") -> VolumeRef:
        if not isinstance(data, dict):
            raise ActionError(f"{where}: expected an object, got {type(data).__name__}")
        fields = _Fields(data, where)
        fields.read.discard("action")
        volume = fields.volume()
        fields.done()
        return volume


@dataclass(frozen=True)
class EarlyStage:
    """The premount run: its decision about the network and its own cost.
    ``network`` is the early network state (``bootseed.early.net``) when it was up."""

    KIND: ClassVar[str] = "early-stage"
    decision: str = ""
    network: dict[str, Any] | None = None
    entropy_ready: bool | None = None
    python: str = ""
    uptime_start: float | None = None
    uptime_end: float | None = None
    process_start_uptime: float | None = None
    # Interpreter start to the manifest write, imports included: the stage's cost.
    wall_ms: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, "decision": self.decision, "network": self.network,
                "entropy_ready": self.entropy_ready, "python": self.python,
                "uptime_start": self.uptime_start, "uptime_end": self.uptime_end,
                "process_start_uptime": self.process_start_uptime, "wall_ms": self.wall_ms,
                "error": self.error}

    @classmethod
    def read(cls, f: _Fields) -> EarlyStage:
        return cls(decision=f.text("decision", ""), network=f.optional_object("network"),
                   entropy_ready=f.optional_flag("entropy_ready"), python=f.text("python", ""),
                   uptime_start=f.optional_number("uptime_start"),
                   uptime_end=f.optional_number("uptime_end"),
                   process_start_uptime=f.optional_number("process_start_uptime"),
                   wall_ms=f.optional_number("wall_ms"), error=f.optional_text("error"))


@dataclass(frozen=True)
class RootSwitch:
    """The root decision after the root was mounted, and the device that is the root."""

    KIND: ClassVar[str] = "rootswitch"
    decision: str
    root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, "decision": self.decision, "root": self.root}

    @classmethod
    def read(cls, f: _Fields) -> RootSwitch:
        return cls(decision=f.text("decision"), root=f.optional_text("root"))


@dataclass(frozen=True)
class RescueSkipped:
    """A rescue volume left alone because it carries a done marker."""

    KIND: ClassVar[str] = "rescue-skipped"
    volume: VolumeRef
    marker: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, **self.volume.to_dict(), "marker": self.marker}

    @classmethod
    def read(cls, f: _Fields) -> RescueSkipped:
        return cls(volume=f.volume(), marker=f.text("marker"))


@dataclass(frozen=True)
class Rescue:
    """A rescue boot: ``volume`` is the root, the original root is at ``original_root``;
    ``notes`` are what went wrong without undoing the switch."""

    KIND: ClassVar[str] = "rescue"
    volume: VolumeRef
    original_root: str
    original_device: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, **self.volume.to_dict(),
                "original_root": self.original_root, "original_device": self.original_device,
                "notes": list(self.notes)}

    @classmethod
    def read(cls, f: _Fields) -> Rescue:
        return cls(volume=f.volume(), original_root=f.text("original_root"),
                   original_device=f.optional_text("original_device"), notes=f.texts("notes"))


@dataclass(frozen=True)
class TakeOver:
    """Another volume became the root (``bootseed.root=`` or ``action: root``)."""

    KIND: ClassVar[str] = "takeover"
    volume: VolumeRef
    reason: str
    original_device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, **self.volume.to_dict(), "reason": self.reason,
                "original_device": self.original_device}

    @classmethod
    def read(cls, f: _Fields) -> TakeOver:
        return cls(volume=f.volume(), reason=f.text("reason"),
                   original_device=f.optional_text("original_device"))


@dataclass(frozen=True)
class Overlay:
    """An overlayfs over the root. ``volume`` and ``formatted`` only when the writable
    layer is a volume (not tmpfs); ``fstab`` says what was done to its ``/`` entry."""

    KIND: ClassVar[str] = "overlay"
    requested: str
    origin: str
    lower: str
    upper: str
    fstab: str
    root_device: str | None = None
    volume: VolumeRef | None = None
    formatted: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"action": self.KIND, "requested": self.requested,
                               "origin": self.origin, "lower": self.lower, "upper": self.upper,
                               "root_device": self.root_device}
        if self.volume is not None:
            doc.update(volume=self.volume.to_dict(), formatted=self.formatted)
        doc["fstab"] = self.fstab
        return doc

    @classmethod
    def read(cls, f: _Fields) -> Overlay:
        volume = f.optional_object("volume")
        return cls(requested=f.text("requested"), origin=f.text("origin"),
                   lower=f.text("lower"), upper=f.text("upper"), fstab=f.text("fstab"),
                   root_device=f.optional_text("root_device"),
                   volume=None if volume is None else VolumeRef.from_dict(
                       volume, f"{f.where}: 'volume'"),
                   formatted=f.optional_flag("formatted"))


@dataclass(frozen=True)
class VolumeMount:
    """``bootseed-volume.yaml`` ``action: mount``: for the late agent to mount."""

    KIND: ClassVar[str] = "volume-mount"
    volume: VolumeRef
    mountpoint: str
    options: str = "defaults"

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, **self.volume.to_dict(), "mountpoint": self.mountpoint,
                "options": self.options}

    @classmethod
    def read(cls, f: _Fields) -> VolumeMount:
        return cls(volume=f.volume(), mountpoint=f.text("mountpoint"),
                   options=f.text("options", "defaults"))


@dataclass(frozen=True)
class VolumeExec:
    """``bootseed-volume.yaml`` ``action: exec``: ``run`` is a path inside the volume."""

    KIND: ClassVar[str] = "volume-exec"
    volume: VolumeRef
    run: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.KIND, **self.volume.to_dict(), "run": self.run}

    @classmethod
    def read(cls, f: _Fields) -> VolumeExec:
        return cls(volume=f.volume(), run=f.text("run"))


Action = (EarlyStage | RootSwitch | RescueSkipped | Rescue | TakeOver | Overlay | VolumeMount
          | VolumeExec)
VolumeAction = VolumeMount | VolumeExec

KINDS: dict[str, Any] = {kind.KIND: kind for kind in (
    EarlyStage, RootSwitch, RescueSkipped, Rescue, TakeOver, Overlay, VolumeMount, VolumeExec)}


def action_from_dict(data: Any, where: str = "action") -> Action:
    """One record; ``ActionError`` names ``where``, the kind and the bad key."""
    if not isinstance(data, dict):
        raise ActionError(f"{where}: expected an object, got {type(data).__name__}")
    kind = data.get("action")
    record = KINDS.get(kind) if isinstance(kind, str) else None
    if record is None:
        raise ActionError(f"{where}: 'action' is {kind!r}; expected one of "
                          f"{', '.join(KINDS)}")
    fields = _Fields(data, f"{where} ({kind})")
    action: Action = record.read(fields)
    fields.done()
    return action


def actions_from_json(data: Any) -> list[Action]:
    """The ``actions`` list of a record file (``None`` is an empty list)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ActionError(f"actions: expected a list, got {type(data).__name__}")
    return [action_from_dict(item, f"actions[{index}]") for index, item in enumerate(data)]


def actions_to_json(actions: Iterable[Action]) -> list[dict[str, Any]]:
    return [action.to_dict() for action in actions]
