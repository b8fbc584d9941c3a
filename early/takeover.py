"""Replace the root the initramfs mounted with another volume (root take-over, rescue).

The swap only uses ``mount --move``, so the original root is never unmounted until the
new one is in place and holds an init; every step that succeeded is undone in reverse
when a later one fails, which puts the original root back where the initramfs expects
it (``${rootmnt}``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bootseed.early import blockdev
from bootseed.early.blockdev import BlockDevError, BlockDevice, MountEntry

DEFAULT_INIT = "/sbin/init"


class RootSwitchError(Exception):
    """A root change failed; the original root is back in place (``undo_problems`` says
    what could not be undone, which should be nothing)."""

    def __init__(self, message: str, undo_problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.undo_problems = undo_problems or []


@dataclass
class UndoStack:
    """Undo steps of a multi-step mount change, run newest first on failure."""

    steps: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def push(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def unwind(self) -> list[str]:
        problems = []
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except (BlockDevError, OSError) as exc:
                problems.append(f"undo {what}: {exc}")
        return problems


def current_root(rootmnt: str, mountinfo: str = "/proc/self/mountinfo") -> MountEntry:
    entry = blockdev.mount_at(rootmnt, mountinfo)
    if entry is None:
        raise RootSwitchError(f"nothing is mounted on {rootmnt}")
    return entry


def root_rdevs(entry: MountEntry) -> frozenset[int]:
    return frozenset({os.makedev(*entry.majmin)})


def has_init(root: str, init: str) -> bool:
    # lexists: /sbin/init is usually an absolute symlink, which only resolves inside.
    return os.path.lexists(os.path.join(root, init.lstrip("/")))


def replace_root(rootmnt: str, volume: BlockDevice, stage_dir: str, *, init: str = DEFAULT_INIT,
                 keep_original_at: str | None = None,
                 mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Put ``volume`` on ``rootmnt`` with the original root's ro/rw option.

    With ``keep_original_at`` (a path inside the new root) the original root is moved
    there and made read-write (rescue); otherwise it is unmounted (take-over). Returns
    notes about things that went wrong without undoing the switch (the original root
    could not be made writable); raises ``RootSwitchError`` after putting it back.
    """
    original = current_root(rootmnt, mountinfo)
    options = "ro" if original.read_only else "rw"
    new_dir = os.path.join(stage_dir, "bootseed-new")
    old_dir = os.path.join(stage_dir, "bootseed-old")
    undo = UndoStack()
    notes: list[str] = []
    try:
        for directory in (new_dir, old_dir):
            os.makedirs(directory, exist_ok=True)
        blockdev.mount(volume, new_dir, options)
        undo.push(f"mount of {volume.path}", lambda: blockdev.umount(new_dir))
        if not has_init(new_dir, init):
            raise RootSwitchError(f"{volume.describe()} has no {init}; not used as the root")
        blockdev.move(rootmnt, old_dir)
        undo.push("move of the original root", lambda: blockdev.move(old_dir, rootmnt))
        blockdev.move(new_dir, rootmnt)
        undo.push("move of the new root", lambda: blockdev.move(rootmnt, new_dir))
        if keep_original_at is None:
            blockdev.umount(old_dir)
        else:
            notes += _keep_original(rootmnt, old_dir, keep_original_at, options, undo)
    except (RootSwitchError, BlockDevError, OSError) as exc:
        raise RootSwitchError(str(exc), undo.unwind()) from exc
    finally:
        for directory in (new_dir, old_dir):
            try:
                os.rmdir(directory)
            except OSError:
                pass
    return notes


def _keep_original(rootmnt: str, old_dir: str, inside: str, options: str,
                   undo: UndoStack) -> list[str]:
    target = os.path.join(rootmnt, inside.strip("/"))
    if not os.path.isdir(target):
        _make_dir_in(rootmnt, target, options)
    blockdev.move(old_dir, target)
    undo.push("move of the original root into the new one",
              lambda: blockdev.move(target, old_dir))
    try:
        blockdev.remount(target, "rw")
    except BlockDevError as exc:
        # Still worth booting: the user can fsck it and remount it by hand.
        return [f"original root left read-only at /{inside.strip('/')}: {exc}"]
    return []


def _make_dir_in(rootmnt: str, target: str, options: str) -> None:
    """Create a mount point in a root that may be mounted read-only."""
    if options == "ro":
        blockdev.remount(rootmnt, "rw")
    try:
        Path(target).mkdir(parents=True, exist_ok=True)
    finally:
        if options == "ro":
            blockdev.remount(rootmnt, "ro")
