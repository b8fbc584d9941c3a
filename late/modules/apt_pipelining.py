"""``apt_pipelining``: HTTP pipelining depth for apt (cloud-init 22.4).

``false`` or ``none`` turns pipelining off (depth 0), a number sets the depth,
``os`` and ``unchanged`` (and ``true``) leave apt's own default alone.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

PIPELINING_FILE = "/etc/apt/apt.conf.d/90cloud-init-pipelining"
SCHEMA: dict[str, Any] = {
    "properties": {
        "apt_pipelining": {
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "boolean"},
                {"type": "string", "enum": ["none", "unchanged", "os"]},
            ]
        }
    }
}


def depth_for(value: Any) -> int | None:
    """The depth to write, or None to leave apt's default; ValueError when unreadable."""
    if value is False or value == "none":
        return 0
    if value is True or value in ("os", "unchanged"):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    raise ValueError("must be false, none, os, unchanged or a number of requests")


def handle(ctx: ModuleContext) -> None:
    try:
        depth = depth_for(ctx.cfg.get("apt_pipelining", "os"))
    except ValueError as exc:
        ctx.problems.append(Problem("apt_pipelining", f"{exc}; left as it is"))
        return
    if depth is None:
        with suppress(FileNotFoundError):
            ctx.target.unlink(PIPELINING_FILE)
        return
    ctx.target.write(PIPELINING_FILE, "// Written by bootseed from 'apt_pipelining'\n"
                     f'Acquire::http::Pipeline-Depth "{depth}";\n', mode=0o644)


MODULE = ModuleSpec(
    name="apt_pipelining",
    stage=Stage.CONFIG,
    order=20,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("apt_pipelining",),
    aliases=("apt-pipelining",),
)
