"""``set_hostname``: write /etc/hostname in the target from ``hostname``/``fqdn`` or the
seed's ``local-hostname``; set the running hostname only when the target is ``/``.

What was set is recorded in the instance dir, so an unchanged name is not
rewritten and ``update_hostname`` can tell an admin's own change from ours.
"""

from __future__ import annotations

import json
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.late.hostnames import (
    HOSTNAME_FILE,
    PREVIOUS_NAME,
    apply_running,
    choose,
    prefer_fqdn,
    write_small,
)
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

RECORD = "set-hostname"
SCHEMA: dict[str, Any] = {
    "properties": {
        "hostname": {"type": "string"},
        "fqdn": {"type": "string"},
        "prefer_fqdn_over_hostname": {"type": "boolean"},
        "preserve_hostname": {"type": "boolean"},
        "create_hostname_file": {"type": "boolean"},
    }
}


def handle(ctx: ModuleContext) -> None:
    if ctx.cfg.get("preserve_hostname", False):
        ctx.log.info("preserve_hostname is set; hostname left alone")
        return
    choice = choose(ctx.cfg, ctx.instance)
    if choice.is_default:
        ctx.log.info("no hostname in config or seed; hostname left alone")
        return
    name = choice.preferred(prefer_fqdn(ctx.cfg))
    record_path = ctx.instance_dir / RECORD
    wanted = {"hostname": choice.hostname, "fqdn": choice.fqdn}
    try:
        if json.loads(record_path.read_text(encoding="utf-8")) == wanted:
            ctx.log.info("hostname %s already set for this instance", name)
            return
    except (FileNotFoundError, ValueError):
        pass
    if ctx.cfg.get("create_hostname_file", True) or ctx.target.exists(HOSTNAME_FILE):
        ctx.target.write(HOSTNAME_FILE, name + "\n", mode=0o644)
    else:
        ctx.log.info("create_hostname_file is false and there is no %s", HOSTNAME_FILE)
    if ctx.target.is_host:
        apply_running(name)
    ctx.log.info("hostname set to %s (fqdn %s)", name, choice.fqdn)
    ctx.instance_dir.mkdir(parents=True, exist_ok=True)
    write_small(ctx.instance_dir / PREVIOUS_NAME, name)
    atomic_write(record_path, json.dumps(wanted, sort_keys=True) + "\n", mode=0o644)


MODULE = ModuleSpec(
    name="set_hostname",
    stage=Stage.INIT,
    order=30,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
