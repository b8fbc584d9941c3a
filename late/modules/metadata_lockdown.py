"""``metadata_lockdown``: once the seed is read, only root reaches the metadata service.

Keys: ``metadata_lockdown`` (bootseed's own; default on when the seed came from
EC2, off elsewhere) and cloud-init 22.4's ``disable_ec2_metadata`` (default
false; when true nobody reaches the service, which wins over the lock-down).
The fence is an nftables table (``bootseed.late.metadatafence``); it lives in
the running kernel only, so the module runs on every boot, first in the init
stage, right after the network configuration: the seed was fetched before
(by the initramfs), and user code (bootcmd, scripts) runs after.

Only on the running system: in a ``--root`` target the kernel is not the
target's, so a note says what would be done. Without nft the status says
that the lock-down is not in place; it is never reported as done.
``bootseed clean`` removes the fence (``late/commands/clean.py``).
"""

from __future__ import annotations

from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import metadatafence
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

DEFAULT_ON_SOURCES = frozenset({"ec2"})
SCHEMA: dict[str, Any] = {
    "properties": {
        "metadata_lockdown": {"type": "boolean"},
        "disable_ec2_metadata": {"type": "boolean"},
    }
}


def _flag(ctx: ModuleContext, key: str, default: bool) -> bool:
    value = ctx.cfg.get(key, default)
    if isinstance(value, bool):
        return value
    ctx.problems.append(Problem(key, f"must be true or false; {str(default).lower()} used",
                                Level.WARNING))
    return default


def wanted_fence(ctx: ModuleContext) -> metadatafence.Fence | None:
    if _flag(ctx, "disable_ec2_metadata", False):
        return metadatafence.Fence.EVERYONE
    if _flag(ctx, "metadata_lockdown", ctx.instance.source in DEFAULT_ON_SOURCES):
        return metadatafence.Fence.ROOT_ONLY
    return None


def handle(ctx: ModuleContext) -> None:
    fence = wanted_fence(ctx)
    # Switched off explicitly: a fence from an earlier run in this boot goes.
    undo = fence is None and ("metadata_lockdown" in ctx.cfg
                              or "disable_ec2_metadata" in ctx.cfg)
    if fence is None and not undo:
        return
    if not ctx.target.is_host:
        what = f"apply: {fence.value}" if fence else "remove any metadata fence"
        ctx.problems.append(Problem("metadata_lockdown", f"would {what}; the target is not "
                                    "the running system, nothing done", Level.NOTE))
        return
    if fence is None:
        for name in metadatafence.remove(ctx.target):
            ctx.log.info("metadata_lockdown: removed %s", name)
        return
    key = "disable_ec2_metadata" if fence is metadatafence.Fence.EVERYONE \
        else "metadata_lockdown"
    try:
        outcome = metadatafence.apply(ctx.target, fence)
    except metadatafence.FenceError as exc:
        ctx.problems.append(Problem(key, f"not applied: {exc}"))
        return
    if not outcome.applied:
        ctx.problems.append(Problem(key, f"not applied: {outcome.detail}", Level.WARNING))
        return
    ctx.log.info("metadata_lockdown: %s (%s)", fence.value, outcome.detail)


MODULE = ModuleSpec(
    name="metadata_lockdown",
    stage=Stage.INIT,
    # After network_config (0), before seed_random (5) and bootcmd (10): no user
    # code of this boot runs before the fence is up.
    order=1,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
    # No activating key: on EC2 it is on without any cloud-config.
    aliases=("disable_ec2_metadata",),
)
