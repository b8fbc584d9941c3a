"""``update_hostname``: every boot, bring /etc/hostname back to the configured name,
unless someone changed it by hand since we last wrote it.

The name we last wrote is kept in the instance dir (``previous-hostname``); a
hostname file that no longer matches it was edited by an admin and is left alone.
"""

from __future__ import annotations

from bootseed.late.hostnames import (
    HOSTNAME_FILE,
    PREVIOUS_NAME,
    apply_running,
    choose,
    prefer_fqdn,
    read_first_word,
    write_small,
)
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

# Keys are owned (and their schema given) by set_hostname.
SCHEMA: dict[str, dict[str, object]] = {"properties": {}}


def handle(ctx: ModuleContext) -> None:
    if ctx.cfg.get("preserve_hostname", False):
        ctx.log.info("preserve_hostname is set; hostname left alone")
        return
    choice = choose(ctx.cfg, ctx.instance)
    if choice.is_default:
        ctx.log.info("no hostname in config or seed; hostname left alone")
        return
    name = choice.preferred(prefer_fqdn(ctx.cfg))
    prev_path = ctx.instance_dir / PREVIOUS_NAME
    previous = read_first_word(prev_path)
    words = ctx.target.read_text(HOSTNAME_FILE, default="").split()
    current = words[0] if words else None
    may_create = bool(ctx.cfg.get("create_hostname_file", True))
    update_file = (current is None and may_create) or (current == previous and current != name)
    if current is not None and previous is not None and current != previous:
        ctx.log.info(
            "%s says %s, not %s as we set it: assuming the admin maintains it",
            HOSTNAME_FILE,
            current,
            previous,
        )
    if update_file:
        ctx.target.write(HOSTNAME_FILE, name + "\n", mode=0o644)
        if ctx.target.is_host:
            apply_running(name)
        ctx.log.info("hostname updated to %s", name)
    if previous != name:
        write_small(prev_path, name)


MODULE = ModuleSpec(
    name="update_hostname",
    stage=Stage.INIT,
    order=40,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
