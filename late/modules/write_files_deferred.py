"""``write_files`` entries with ``defer: true``: written in the final stage, once the
users and groups they may be owned by exist."""

from __future__ import annotations

from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.modules.write_files import write_entries


def handle(ctx: ModuleContext) -> None:
    write_entries(ctx, deferred=True)


MODULE = ModuleSpec(
    name="write_files_deferred",
    stage=Stage.FINAL,
    order=10,
    frequency=Frequency.PER_INSTANCE,
    # The key's schema is owned by write_files; one owner per key.
    schema={"properties": {}},
    handle=handle,
    activate_keys=("write_files",),
)
