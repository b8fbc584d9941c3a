"""``scripts_vendor``: run vendor-data shell scripts once per instance.

The user can switch vendor-data off (``vendor_data: {enabled: false}``) or
run each script through a wrapper (``vendor_data: {prefix: [...]}``).
"""

from __future__ import annotations

import shlex

from bootseed.late.execute import run_script_dir
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

_PREFIX = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
SCHEMA = {
    "properties": {
        "vendor_data": {
            "type": "object",
            "properties": {"enabled": {"type": ["boolean", "string"]}, "prefix": _PREFIX},
            "additionalProperties": False,
        }
    }
}


def handle(ctx: ModuleContext) -> None:
    settings = ctx.cfg.get("vendor_data") or {}
    if not isinstance(settings, dict):
        raise ValueError("vendor_data: must be a mapping")
    enabled = settings.get("enabled", True)
    if enabled is False or str(enabled).lower() in ("false", "no", "0"):
        ctx.log.info("vendor scripts disabled by vendor_data.enabled")
        return
    prefix = settings.get("prefix") or []
    if isinstance(prefix, str):
        prefix = shlex.split(prefix)
    ran = run_script_dir(ctx.target, ctx.instance_dir / "vendor_scripts",
                         env={"INSTANCE_ID": ctx.instance.instance_id}, prefix=prefix,
                         before_first=ctx.begin_unrepeatable)
    ctx.log.info("ran %d vendor script(s)", len(ran))


MODULE = ModuleSpec(
    name="scripts_vendor",
    stage=Stage.FINAL,
    order=20,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    idempotent=False,
)
