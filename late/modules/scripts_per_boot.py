"""``scripts_per_boot``: run the scripts in ``/var/lib/bootseed/scripts/per-boot/``
on every boot (an image may ship them; user-data ``text/x-shellscript-per-boot`` parts
land there too)."""

from __future__ import annotations

from bootseed.late.execute import run_script_dir
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.state import PER_BOOT_SCRIPTS


def handle(ctx: ModuleContext) -> None:
    ran = run_script_dir(ctx.target, ctx.target.real_path(PER_BOOT_SCRIPTS),
                         env={"INSTANCE_ID": ctx.instance.instance_id})
    ctx.log.info("ran %d script(s)", len(ran))


MODULE = ModuleSpec(
    name="scripts_per_boot",
    stage=Stage.FINAL,
    order=40,
    frequency=Frequency.PER_BOOT,
    schema={},
    handle=handle,
)
