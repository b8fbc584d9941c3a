"""``growpart``: grow the partitions under ``/`` (or other paths) to fill their disks.

cloud-init 22.4's key and meaning: ``growpart: {mode: auto|growpart|gpart|off, devices: [..],
ignore_growroot_disabled: bool}``; ``mode: false`` is ``off``; ``gpart`` (FreeBSD) is an
error on Linux, as cloud-init fails a named mode whose tool is missing; ``devices`` defaults to
``["/"]`` and takes mount points or device nodes. The file ``/etc/growroot-disabled``
in the target turns the module off unless ``ignore_growroot_disabled`` is true.

The work is done by ``growpart`` from cloud-guest-utils as installed in the target
(``auto`` quietly does nothing without it, ``growpart`` makes its absence an error).
``growpart`` exiting 1 with ``NOCHANGE`` means the partition already fills its disk.
``growpart`` itself leaves the partition table as it was when it fails; the failure
is reported and the other devices are still tried. The filesystem is grown afterwards
by ``resizefs`` (``resize_rootfs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.partitions import (
    Partition,
    name_of_node,
    own_mount,
    partition_of,
    room_after,
)
from bootseed.late.target import TargetRoot

DISABLED_FLAG = "/etc/growroot-disabled"
GROWPART_TIMEOUT_S = 120.0
# Less room than this after a partition is not worth a partition-table write: growpart
# itself says NOCHANGE there (sfdisk aligns the end to 1 MiB, and a GPT keeps its
# backup table in the last 16.5 KiB); images made by bootseed-image leave 1 MiB.
MIN_GROWTH = 2 * 1024 * 1024

SCHEMA: dict[str, Any] = {
    "properties": {
        "growpart": {
            "type": "object",
            "properties": {
                "mode": {"oneOf": [{"enum": ["auto", "growpart", "gpart", "off"]},
                                   {"const": False}]},
                "devices": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "ignore_growroot_disabled": {"type": "boolean"},
            },
            "additionalProperties": False,
        }
    }
}


class Outcome(Enum):
    GROWN = "grown"
    NOCHANGE = "nochange"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    device: str  # as given in ``devices``
    outcome: Outcome
    detail: str


class DeviceError(ValueError):
    """A ``devices`` entry that names no partition this module can grow."""


def partition_for(target: TargetRoot, device: str) -> Partition:
    """The partition an entry of ``devices`` names: a device node in the target's
    ``/dev`` or a path whose mount is the target's own."""
    if device.startswith("/dev/"):
        name = name_of_node(str(target.real_path(device)))
        if name is None:
            raise DeviceError(f"{device} is not a block device in the target")
    else:
        if not device.startswith("/"):
            raise DeviceError(f"{device!r} is neither a device node nor an absolute path")
        mount = own_mount(target.root, target.real_path(device))
        if mount is None:
            raise DeviceError(f"{device} is not on a filesystem of the target's own")
        if mount.device is None:
            raise DeviceError(f"{device} is on {mount.fstype}, not on a block device")
        name = mount.device
    partition = partition_of(name)
    if partition is None:
        raise DeviceError(f"{device} ({name}) is not a disk partition")
    if not target.is_host and not target.exists(partition.disk_node):
        raise DeviceError(f"{partition.disk_node} does not exist in the target's /dev")
    return partition


def grow(target: TargetRoot, tool: str, device: str) -> Result:
    """Grow the partition under one ``devices`` entry with the target's ``growpart``."""
    from bootseed.late.execute import run_captured

    try:
        part = partition_for(target, device)
    except DeviceError as exc:
        return Result(device, Outcome.SKIPPED, str(exc))
    room = room_after(part)
    if room is not None and room < MIN_GROWTH:
        # growpart (seconds of shell and sfdisk under TCG) would say NOCHANGE too.
        return Result(device, Outcome.NOCHANGE, f"{part.node} already fills "
                                                f"{part.disk_node} ({room} bytes after it)")
    run = run_captured(target, [tool, part.disk_node, str(part.number)],
                       timeout=GROWPART_TIMEOUT_S, keep=4096)
    tail = " ".join(run.output.split())[-300:]
    if run.returncode == 0:
        return Result(device, Outcome.GROWN, f"{part.node}: {tail}")
    if run.returncode == 1 and "NOCHANGE" in run.output:
        return Result(device, Outcome.NOCHANGE, f"{part.node} already fills {part.disk_node}")
    why = "timed out" if run.timed_out else f"exited with status {run.returncode}"
    return Result(device, Outcome.FAILED, f"growpart {part.disk_node} {part.number} {why}: "
                                          f"{tail}")


def mode_of(cfg: dict[str, Any]) -> str:
    mode = cfg.get("mode", "auto")
    return "off" if mode is False else str(mode)


def handle(ctx: ModuleContext) -> None:
    from bootseed.late.execute import find_tool

    cfg = ctx.cfg.get("growpart") or {}
    mode = mode_of(cfg)
    if mode == "off":
        ctx.log.info("growpart: mode off")
        return
    if ctx.target.exists(DISABLED_FLAG) and not cfg.get("ignore_growroot_disabled", False):
        ctx.log.info("growpart: %s exists; nothing grown", DISABLED_FLAG)
        return
    if mode == "gpart":
        # cloud-init's resizer for FreeBSD's gpart; a mode other than auto without its
        # tool is an error there too.
        raise RuntimeError("growpart: mode gpart is FreeBSD's partition tool; use auto or "
                           "growpart on Linux")
    tool = find_tool(ctx.target, "growpart")
    if tool is None:
        if mode == "growpart":
            raise RuntimeError("growpart: mode growpart, but the target has no growpart "
                               "command (Debian package cloud-guest-utils)")
        ctx.log.info("growpart: no growpart command in the target; nothing grown")
        return
    # A skip is worth a warning only for devices the user named; the default "/" on a
    # whole-disk or LVM root is simply nothing to grow.
    skip_level = Level.WARNING if "devices" in cfg else Level.NOTE
    results = [grow(ctx.target, tool, device) for device in cfg.get("devices", ["/"])]
    failed = []
    for result in results:
        where = f"growpart.devices: {result.device}"
        if result.outcome is Outcome.FAILED:
            ctx.problems.append(Problem(where, result.detail, Level.ERROR))
            failed.append(result.device)
        elif result.outcome is Outcome.SKIPPED:
            ctx.problems.append(Problem(where, result.detail, skip_level))
        elif result.outcome is Outcome.GROWN:
            ctx.problems.append(Problem(where, f"grown: {result.detail}", Level.NOTE))
        ctx.log.info("%s: %s (%s)", result.device, result.outcome.value, result.detail)
    if failed and len(failed) == len(results):
        raise RuntimeError(f"growpart failed for {', '.join(failed)}")


MODULE = ModuleSpec(
    name="growpart",
    stage=Stage.INIT,
    order=23,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
