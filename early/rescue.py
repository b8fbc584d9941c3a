"""Rescue boot: a volume labelled for rescue becomes the root; the original root is kept
read-write at ``/media/original-root`` so the user can repair it from the rescue system.

The flow (seeds/003): label a good instance's root volume ``RESCUE``, attach it to the
broken instance, reboot it; repair; then put a ``DONE`` marker on the rescue volume (or
detach it) and reboot into the repaired system.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from bootseed.contract.actions import Rescue, RescueSkipped, VolumeRef
from bootseed.contract.cmdline import parse_switch
from bootseed.early import blockdev
from bootseed.early.blockdev import BlockDevError, BlockDevice
from bootseed.early.budget import Budget
from bootseed.early.takeover import replace_root

# RESCUE_VOL for the tools that already label volumes that way.
DEFAULT_LABELS = ("RESCUE", "UEC-rescue", "RESCUE_VOL")
MARKERS = ("DONE", "finished", "etc/rescuevol-ignore")
ORIGINAL_ROOT = "/media/original-root"


@dataclass
class RescueChoice:
    volume: BlockDevice | None = None
    skipped: list[RescueSkipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_labels(value: str | None) -> tuple[str, ...]:
    """``bootseed.rescue=`` : a comma list replacing the defaults, or an off word (empty
    tuple). No value or an on word means the defaults."""
    switch = parse_switch(value)
    if value is None or value == "" or switch is True:
        return DEFAULT_LABELS
    if switch is False:
        return ()
    return tuple(label for label in (part.strip() for part in value.split(",")) if label)


def marker_on(root: str) -> str | None:
    for marker in MARKERS:
        if os.path.lexists(os.path.join(root, marker)):
            return marker
    return None


def choose(candidates: Sequence[BlockDevice], labels: Sequence[str], budget: Budget,
           exclude: frozenset[int] = frozenset(), mount_base: str = "/run") -> RescueChoice:
    """The first rescue volume without a marker, labels tried in the given order."""
    choice = RescueChoice()
    for label in labels:
        for volume in candidates:
            if volume.label is None or volume.label.lower() != label.lower():
                continue
            if volume.rdev is not None and volume.rdev in exclude:
                continue
            if budget.exhausted:
                choice.problems.append(f"rescue scan stopped after {budget.seconds:g}s before "
                                       f"{volume.describe()}")
                return choice
            try:
                with blockdev.mounted(volume, budget.cap(15.0), mount_base) as root:
                    marker = marker_on(str(root))
            except BlockDevError as exc:
                choice.problems.append(f"rescue volume {volume.describe()}: {exc}")
                continue
            if marker is not None:
                choice.skipped.append(RescueSkipped(VolumeRef.from_dict(volume.as_dict()),
                                                    marker))
                continue
            choice.volume = volume
            return choice
    return choice


def boot_rescue(rootmnt: str, volume: BlockDevice, stage_dir: str, init: str,
                mountinfo: str = "/proc/self/mountinfo") -> Rescue:
    """Switch to the rescue root; raises ``RootSwitchError`` with the original put back."""
    original = blockdev.mount_at(rootmnt, mountinfo)
    notes = replace_root(rootmnt, volume, stage_dir, init=init, keep_original_at=ORIGINAL_ROOT,
                         mountinfo=mountinfo)
    return Rescue(VolumeRef.from_dict(volume.as_dict()), ORIGINAL_ROOT,
                  original.source if original else None, tuple(notes))
