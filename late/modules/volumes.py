"""``volumes``: the late half of volume consumption (seeds/002, "auto consumption of EBS
volumes").

The initramfs stage (``bootseed.early.rootswitch``) found the volumes whose
``bootseed-volume.yaml`` asks for ``action: mount`` or ``action: exec`` and recorded
them as ``volume-mount`` / ``volume-exec`` actions (``bootseed.contract.actions``); the
runner reads them and hands them over in ``ctx.recorded_actions``. This module acts on
them with ``bootseed.late.volumeactions`` (fstab line and mount; the script, once).

The image switch ``volumes: {consume: false}`` (bootseed.cfg) is read by the early
stage, which then records nothing; its schema lives here so the late agent accepts it.
"""

from __future__ import annotations

import subprocess

from bootseed.contract.actions import VolumeAction, VolumeExec, VolumeMount
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.volumeactions import exec_volume, mount_volume

SCHEMA = {
    "properties": {
        "volumes": {
            "type": "object",
            "description": "Consumption of attached volumes holding bootseed-volume.yaml "
                           "(read by the initramfs stage from the image's bootseed.cfg).",
            "properties": {
                "consume": {"type": "boolean"},
                "actions": {"type": "array", "items": {"enum": ["root", "mount", "exec"]}},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            },
            "additionalProperties": False,
        },
        "overlay": {
            "description": "Overlay root for every boot: tmpfs, LABEL=NAME[,mkfs], UUID=.. "
                           "or /dev/..[,mkfs] (read by the initramfs stage).",
            "oneOf": [{"type": "string"}, {"const": False}],
        },
    }
}


def volume_actions(ctx: ModuleContext) -> list[VolumeAction]:
    return [a for a in ctx.recorded_actions if isinstance(a, VolumeMount | VolumeExec)]


def handle(ctx: ModuleContext) -> None:
    actions = volume_actions(ctx)
    if not actions:
        ctx.log.info("no volumes to consume")
        return
    errors = []
    for action in actions:
        what = f"{action.KIND} {action.volume.device} (UUID={action.volume.uuid})"
        try:
            if isinstance(action, VolumeMount):
                mount_volume(ctx.target, ctx.log, action)
            else:
                exec_volume(ctx.target, ctx.log, action)
        except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
            ctx.log.error("%s: %s", what, exc)
            errors.append(f"{what}: {exc}")
    if errors:
        raise RuntimeError("; ".join(errors))


MODULE = ModuleSpec(
    name="volumes",
    stage=Stage.INIT,
    order=80,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
