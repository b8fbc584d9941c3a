"""``scripts_per_once``: run the scripts in ``/var/lib/bootseed/scripts/per-once/``
once for the life of the image, whatever the instance (an image may ship them;
user-data ``text/x-shellscript-per-once`` parts land there too)."""

from __future__ import annotations

from bootseed.late.execute import run_script_dir
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.state import PER_ONCE_SCRIPTS


def handle(ctx: ModuleContext) -> None:
    ran = run_script_dir(ctx.target, ctx.target.real_path(PER_ONCE_SCRIPTS),
                         env={"INSTANCE_ID": ctx.instance.instance_id},
                         before_first=ctx.begin_unrepeatable)
    ctx.log.info("ran %d script(s)", len(ran))


MODULE = ModuleSpec(
    name="scripts_per_once",
    stage=Stage.FINAL,
    order=30,
    frequency=Frequency.PER_ONCE,
    schema={},
    handle=handle,
    idempotent=False,
)
