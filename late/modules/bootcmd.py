"""``bootcmd``: commands run very early on every boot, before most other modules.

Entries are shell lines (strings) or argv lists. They run as one ``/bin/sh``
script with ``INSTANCE_ID`` in the environment, so a command that must run
once per instance can test for it itself (cloud-init's contract).
"""

from __future__ import annotations

from bootseed.contract.atomicfile import atomic_write
from bootseed.late.execute import commands_to_script, run_in_target
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

COMMANDS_SCHEMA = {
    "type": "array",
    "items": {
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": ["string", "number"]}},
        ]
    },
}


def handle(ctx: ModuleContext) -> None:
    commands = ctx.cfg.get("bootcmd") or []
    if not isinstance(commands, list):
        raise ValueError("bootcmd: must be a list of commands")
    script = commands_to_script(commands, "bootcmd")
    path = ctx.instance_dir / "bootcmd"
    atomic_write(path, script, mode=0o700)
    inside = "/" + str(path.relative_to(ctx.target.root)).lstrip("/")
    ctx.log.info("running %d boot command(s)", len(commands))
    run_in_target(ctx.target, ["/bin/sh", inside],
                  env={"INSTANCE_ID": ctx.instance.instance_id}, what="bootcmd")


MODULE = ModuleSpec(
    name="bootcmd",
    stage=Stage.INIT,
    order=10,
    frequency=Frequency.PER_BOOT,
    schema={"properties": {"bootcmd": COMMANDS_SCHEMA}},
    handle=handle,
    activate_keys=("bootcmd",),
)
