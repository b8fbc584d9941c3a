"""boot_health: mark this boot good for GRUB's boot counting (bootseed fallback).

Runs last in the final stage, every boot: reaching it means the system came up
and bootseed did its work. It runs ``/etc/bootseed/health.d/`` checks, resets
the counter on a good boot from the default entry, and records the outcome in
``/run/bootseed/fallback.json``. Without ``bootseed fallback install`` it only
records that and does nothing else. A failed health check fails the module, so
the status shows it, and leaves the counter counting down.
"""

from __future__ import annotations

from pathlib import Path

from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage


def handle(ctx: ModuleContext) -> None:
    from bootseed.late.fallback.health import mark_boot, write_record

    proc = Path("/proc") if ctx.target.is_host else ctx.target.path("/proc")
    record = mark_boot(ctx.target, proc)
    write_record(ctx.target.real_path("/run/bootseed"), record)
    if not record.installed:
        ctx.log.debug("fallback not installed: nothing to mark")
        return
    ctx.log.info("%s", record.note)
    if record.origin.from_fallback:
        ctx.console(f"bootseed: this boot came from the fallback entry: "
                    f"{record.origin.explanation}")
    if record.failed_checks:
        details = "; ".join(f"{c.name}: {c.detail}" for c in record.failed_checks)
        raise RuntimeError(f"health checks failed, boot not marked good: {details}")


MODULE = ModuleSpec(
    name="boot_health",
    stage=Stage.FINAL,
    # Last in the final stage, far past the others: it marks the boot good for
    # the GRUB fallback counter only once everything before it in this boot ran.
    order=1000,
    frequency=Frequency.PER_BOOT,
    schema={},
    handle=handle,
)
