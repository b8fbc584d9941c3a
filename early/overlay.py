"""Overlay root: the image's root read-only underneath, writes go to tmpfs or a volume.

The AUFS-on-EBS idea (seeds/002) with overlayfs. Inside the booted system the lower
layer (the image root, read-only) is at ``/media/root-ro`` and the writable layer at
``/media/root-rw`` (``upper/`` and ``work/``). ``/etc/fstab`` in the overlay gets its
``/`` line commented out so systemd does not remount the root over the overlay.

A volume is formatted only when ``mkfs`` was asked for and it is blank (no signature,
first MiB zero); a volume holding anything is never formatted. Any failure undoes every
step, leaving the original root on ``${rootmnt}`` as the initramfs mounted it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bootseed.contract.actions import Overlay, VolumeRef
from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.cmdline import parse_switch
from bootseed.early import blockdev
from bootseed.early.blockdev import BlockDevError, BlockDevice
from bootseed.early.budget import Budget
from bootseed.early.takeover import DEFAULT_INIT, RootSwitchError, UndoStack, has_init

LOWER_DIR = "/media/root-ro"
UPPER_DIR = "/media/root-rw"
# Below this a writable layer fills up during the first package upgrade; refuse it.
MIN_VOLUME_BYTES = 32 * 1024 * 1024
MKFS_DEFAULT_LABEL = "bootseed-rw"
FSTAB_NOTE = "# bootseed overlay root: "


@dataclass(frozen=True)
class OverlayRequest:
    """``tmpfs``, or a volume named ``LABEL=``/``UUID=``/a device path, maybe ``mkfs``."""

    upper: str
    mkfs: bool = False
    origin: str = "kernel command line"

    @property
    def on_tmpfs(self) -> bool:
        return self.upper == "tmpfs"


def parse_request(value: str, origin: str) -> OverlayRequest | None:
    """``tmpfs`` | ``LABEL=NAME[,mkfs]`` | ``UUID=..`` | ``/dev/..[,mkfs]``; off words give
    None. ``ValueError`` names ``origin`` and the bad part."""
    text = value.strip()
    if not text or parse_switch(text) is False:
        return None
    head, *flags = [part.strip() for part in text.split(",")]
    unknown = [flag for flag in flags if flag.lower() != "mkfs"]
    if unknown:
        raise ValueError(f"{origin}: {value}: unknown option(s) {', '.join(unknown)}; "
                         "only mkfs")
    mkfs = bool(flags)
    if head.lower() == "tmpfs":
        if mkfs:
            raise ValueError(f"{origin}: {value}: mkfs makes no sense with tmpfs")
        return OverlayRequest("tmpfs", False, origin)
    kind, sep, name = head.partition("=")
    if sep and kind.upper() in ("LABEL", "UUID") and name:
        return OverlayRequest(f"{kind.upper()}={name}", mkfs, origin)
    if head.startswith("/dev/"):
        return OverlayRequest(head, mkfs, origin)
    raise ValueError(f"{origin}: {value}: expected tmpfs, LABEL=NAME, UUID=UUID or /dev/NAME")


def find_upper(request: OverlayRequest, budget: Budget, devices: Sequence[str] | None,
               exclude: frozenset[int]) -> tuple[BlockDevice, bool]:
    """The volume for the writable layer and whether it was formatted just now.

    With ``mkfs`` a blank volume is formatted at once when the named one is not there
    yet (a blank volume has no label to wait for); otherwise it is waited for.
    """
    if not request.mkfs:
        return blockdev.wait_for(request.upper, budget, devices, exclude), False
    for volume in blockdev.scan(devices):
        if blockdev.matches(volume, request.upper) and volume.rdev not in exclude:
            return volume, False
    blank = _blank_candidate(request, devices, exclude)
    if blank is None:
        try:
            return blockdev.wait_for(request.upper, budget, devices, exclude), False
        except BlockDevError as missing:
            raise BlockDevError(f"{missing}; and no single blank volume to format "
                                "(a volume with data is never formatted)") from missing
    label = (request.upper.partition("=")[2] if request.upper.startswith("LABEL=")
             else MKFS_DEFAULT_LABEL)
    _check_size(blank)
    blockdev.run(["mke2fs", "-q", "-t", "ext4", "-L", label, blank], max(budget.remaining(), 60))
    made = blockdev.probe(blank)
    if made is None:
        raise BlockDevError(f"{blank}: formatted but no filesystem found afterwards")
    return made, True


def _blank_candidate(request: OverlayRequest, devices: Sequence[str] | None,
                     exclude: frozenset[int]) -> str | None:
    if request.upper.startswith("/dev/"):
        path = request.upper
        return path if os.path.exists(path) and blockdev.is_blank(path) else None
    if request.upper.startswith("UUID="):
        return None  # a blank volume has no UUID yet; nothing to match
    blank = []
    for path in devices if devices is not None else blockdev.list_block_devices():
        try:
            if os.stat(path).st_rdev in exclude or _holds_partitions(path):
                continue
            if blockdev.is_blank(path):
                blank.append(path)
        except (OSError, BlockDevError):
            continue
    return blank[0] if len(blank) == 1 else None


def _holds_partitions(path: str) -> bool:
    name = os.path.basename(path)
    try:
        return any(entry.startswith(name) for entry in os.listdir(f"/sys/class/block/{name}"))
    except OSError:
        return False


def _check_size(path: str) -> None:
    size = blockdev.device_size(path)
    if size < MIN_VOLUME_BYTES:
        raise BlockDevError(f"{path}: {size // 1024} KiB is too small for the writable layer "
                          f"(at least {MIN_VOLUME_BYTES // (1024 * 1024)} MiB)")


def apply(rootmnt: str, request: OverlayRequest, stage_dir: str, budget: Budget, *,
          devices: Sequence[str] | None = None, init: str = DEFAULT_INIT,
          mountinfo: str = "/proc/self/mountinfo") -> Overlay:
    """Put an overlay on ``rootmnt``; ``RootSwitchError`` after undoing everything."""
    from bootseed.early.takeover import current_root, root_rdevs

    original = current_root(rootmnt, mountinfo)
    lower = os.path.join(stage_dir, "root-ro")
    upper = os.path.join(stage_dir, "root-rw")
    undo = UndoStack()
    layer: VolumeRef | None = None
    formatted: bool | None = None
    try:
        if not original.read_only:
            # The lower layer must not change under the overlay.
            blockdev.remount(rootmnt, "ro")
            undo.push("read-only remount of the root",
                      lambda: blockdev.remount(rootmnt, "rw"))
        for directory in (lower, upper):
            os.makedirs(directory, exist_ok=True)
        if request.on_tmpfs:
            blockdev.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "bootseed-rw", upper], 30.0)
        else:
            volume, formatted = find_upper(request, budget, devices, root_rdevs(original))
            _check_size(volume.path)
            layer = VolumeRef.from_dict(volume.as_dict())
            blockdev.mount(volume, upper, "rw", 60.0)
        undo.push("mount of the writable layer", lambda: blockdev.umount(upper))
        for name in ("upper", "work"):
            os.makedirs(os.path.join(upper, name), mode=0o755, exist_ok=True)
        blockdev.move(rootmnt, lower)
        undo.push("move of the root to the lower layer", lambda: blockdev.move(lower, rootmnt))
        blockdev.run(["mount", "-t", "overlay", "-o",
                     f"lowerdir={lower},upperdir={upper}/upper,workdir={upper}/work",
                     "bootseed-root", rootmnt], 30.0)
        undo.push("overlay mount", lambda: blockdev.umount(rootmnt))
        if not has_init(rootmnt, init):
            raise RootSwitchError(f"the overlay root has no {init}")
        for staged, inside in ((lower, LOWER_DIR), (upper, UPPER_DIR)):
            target = os.path.join(rootmnt, inside.lstrip("/"))
            os.makedirs(target, exist_ok=True)
            blockdev.move(staged, target)
            undo.push(f"move to {inside}", _mover(target, staged))
        fstab = adjust_fstab(Path(rootmnt))
    except (RootSwitchError, BlockDevError, OSError) as exc:
        raise RootSwitchError(str(exc), undo.unwind()) from exc
    finally:
        for directory in (lower, upper):
            try:
                os.rmdir(directory)
            except OSError:
                pass
    return Overlay(requested=request.upper, origin=request.origin, lower=LOWER_DIR,
                   upper=UPPER_DIR, fstab=fstab, root_device=original.source, volume=layer,
                   formatted=formatted)


def _mover(source: str, target: str) -> Callable[[], None]:
    return lambda: blockdev.move(source, target)


def adjust_fstab(root: Path) -> str:
    """Comment out the ``/`` entry of the overlay's fstab (the write lands in the upper
    layer); returns what was done."""
    path = root / "etc" / "fstab"
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return "no /etc/fstab"
    lines = text.splitlines(keepends=True)
    changed = False
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1] == "/":
            lines[i] = f"{FSTAB_NOTE}{line}"
            changed = True
    if not changed:
        return "no / entry"
    atomic_write(path, "".join(lines).encode("utf-8", "surrogateescape"), mode=0o644)
    return "/ entry commented out"
