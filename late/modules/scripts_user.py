"""``scripts_user``: run the instance's user scripts (user-data shell parts and
``runcmd``) once per instance, in name order; every script runs even if one fails."""

from __future__ import annotations

from bootseed.late.execute import run_script_dir
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage


def handle(ctx: ModuleContext) -> None:
    ran = run_script_dir(ctx.target, ctx.instance_dir / "scripts",
                         env={"INSTANCE_ID": ctx.instance.instance_id},
                         before_first=ctx.begin_unrepeatable)
    ctx.log.info("ran %d script(s)%s", len(ran), f": {', '.join(ran)}" if ran else "")


MODULE = ModuleSpec(
    name="scripts_user",
    stage=Stage.FINAL,
    order=60,
    frequency=Frequency.PER_INSTANCE,
    schema={},
    handle=handle,
    idempotent=False,
)
