"""``runcmd``: commands for the end of the first boot of an instance.

Like cloud-init, this module only writes them as a script into the
instance's ``scripts/`` directory; ``scripts_user`` runs it in the final
stage, after users, files and keys exist.
"""

from __future__ import annotations

from bootseed.contract.atomicfile import atomic_write
from bootseed.late.execute import commands_to_script
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.modules.bootcmd import COMMANDS_SCHEMA


def handle(ctx: ModuleContext) -> None:
    commands = ctx.cfg.get("runcmd") or []
    if not isinstance(commands, list):
        raise ValueError("runcmd: must be a list of commands")
    script = commands_to_script(commands, "runcmd")
    folder = ctx.instance_dir / "scripts"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(folder / "runcmd", script, mode=0o700)
    ctx.log.info("wrote %d command(s) for scripts_user", len(commands))


MODULE = ModuleSpec(
    name="runcmd",
    stage=Stage.CONFIG,
    order=100,
    frequency=Frequency.PER_INSTANCE,
    schema={"properties": {"runcmd": COMMANDS_SCHEMA}},
    handle=handle,
    activate_keys=("runcmd",),
)
