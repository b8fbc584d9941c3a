"""``resizefs`` (key ``resize_rootfs``): grow the root filesystem to fill its partition.

cloud-init 22.4's key and meaning: ``resize_rootfs: true`` (the default) grows the
filesystem mounted on ``/`` while it is mounted, ``false`` leaves it alone,
``noblock`` starts the resize in the background and goes on with the boot (its
output goes to ``/var/log/bootseed/resizefs.log`` in the target). It runs after
``growpart``. The tool is the target's own: ``resize2fs`` for ext2/3/4,
``xfs_growfs`` for XFS, ``btrfs filesystem resize max`` for btrfs; other
filesystems are left alone with a note. A filesystem that already fills its
partition is not an error (the tools say so and exit 0). A failing tool leaves the
filesystem as it was (online growing is all or nothing) and is reported.
"""

from __future__ import annotations

from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.partitions import Mounted, own_mount
from bootseed.late.target import TargetRoot

RESIZE_TIMEOUT_S = 600.0
NOBLOCK_LOG = "/var/log/bootseed/resizefs.log"

SCHEMA: dict[str, Any] = {
    "properties": {
        "resize_rootfs": {"oneOf": [{"type": "boolean"}, {"const": "noblock"}]},
    }
}


def resize_command(mount: Mounted, path: str) -> list[str] | None:
    """The command that grows the filesystem mounted at ``path`` (as the target sees
    it), or ``None`` when bootseed cannot grow that kind of filesystem."""
    if mount.fstype in ("ext2", "ext3", "ext4"):
        if mount.device is None:
            return None
        return ["resize2fs", f"/dev/{mount.device}"]
    if mount.fstype == "xfs":
        return ["xfs_growfs", path]
    if mount.fstype == "btrfs":
        return ["btrfs", "filesystem", "resize", "max", path]
    return None


class ResizeSkipped(Exception):
    """Nothing to grow at that path (not the target's own filesystem, unknown type…)."""


def prepared(target: TargetRoot, path: str) -> list[str]:
    """The argv (tool as found in the target) that grows the filesystem at ``path``."""
    from bootseed.late.execute import find_tool

    mount = own_mount(target.root, target.real_path(path))
    if mount is None:
        raise ResizeSkipped(f"{path} is not on a filesystem of the target's own")
    argv = resize_command(mount, path)
    if argv is None:
        raise ResizeSkipped(f"{path} is {mount.fstype}; bootseed grows ext2/3/4, xfs "
                            "and btrfs only")
    if argv[0] == "resize2fs" and not target.is_host and not target.exists(argv[1]):
        raise ResizeSkipped(f"{argv[1]} does not exist in the target's /dev")
    tool = find_tool(target, argv[0])
    if tool is None:
        raise FileNotFoundError(f"the target has no {argv[0]} command to grow {path} "
                                f"({mount.fstype})")
    return [tool, *argv[1:]]


def resize(target: TargetRoot, path: str) -> str:
    """Grow the filesystem at ``path`` now; returns the tool's output, raises on failure."""
    from bootseed.late.execute import run_captured

    argv = prepared(target, path)
    run = run_captured(target, argv, timeout=RESIZE_TIMEOUT_S, keep=4096)
    tail = " ".join(run.output.split())[-300:]
    if run.returncode != 0:
        why = "timed out" if run.timed_out else f"exited with status {run.returncode}"
        raise RuntimeError(f"{' '.join(argv)} {why}: {tail}")
    return tail


def start_in_background(target: TargetRoot, path: str) -> int:
    """``noblock``: start the resize detached, output appended to NOBLOCK_LOG; its pid."""
    from bootseed.late.execute import start_detached

    return start_detached(target, prepared(target, path), NOBLOCK_LOG)


def handle(ctx: ModuleContext) -> None:
    setting = ctx.cfg.get("resize_rootfs", True)
    if setting is False:
        ctx.log.info("resize_rootfs: false")
        return
    try:
        if setting == "noblock":
            pid = start_in_background(ctx.target, "/")
            ctx.log.info("resizing / in the background (pid %d, output in %s)", pid,
                         NOBLOCK_LOG)
            return
        output = resize(ctx.target, "/")
    except ResizeSkipped as exc:
        ctx.log.info("resize_rootfs: %s", exc)
        return
    except FileNotFoundError as exc:
        ctx.problems.append(Problem("resize_rootfs", str(exc), Level.WARNING))
        return
    ctx.log.info("resized /: %s", output)


MODULE = ModuleSpec(
    name="resizefs",
    stage=Stage.INIT,
    order=24,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
    aliases=("resize_rootfs",),
)
