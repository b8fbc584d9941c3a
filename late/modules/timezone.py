"""``timezone``: the system time zone (cloud-init 22.4, Debian).

The name must be a tz file in the target's own ``/usr/share/zoneinfo`` (the
target's tzdata decides, not the host's). ``/etc/timezone`` gets the name and
``/etc/localtime`` becomes a relative symlink to the zone file, as Debian's
tzdata configures it. A name that is not a zone there is reported and nothing
changes.
"""

from __future__ import annotations

import re
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.target import TargetPathError

ZONEINFO = "/usr/share/zoneinfo"
# Zone names are path components of letters, digits, '_', '+' and '-' ("Etc/GMT+5",
# "America/Port-au-Prince"); no '.', so no '..' and no hidden file.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")
TZIF_MAGIC = b"TZif"
SCHEMA: dict[str, Any] = {"properties": {"timezone": {"type": "string", "minLength": 1}}}


def zone_problem(ctx: ModuleContext, name: object) -> str | None:
    """Why ``name`` is not a zone of the target, or None when it is one."""
    if not isinstance(name, str) or not _ZONE_NAME.fullmatch(name):
        return "is not a time zone name (like Europe/Berlin or UTC)"
    try:
        data = ctx.target.read_bytes(f"{ZONEINFO}/{name}")
    except (OSError, TargetPathError):  # missing, a directory, a link leaving the target
        return f"{name!r} is not a time zone file in the target's {ZONEINFO}"
    if not data.startswith(TZIF_MAGIC):
        return f"{ZONEINFO}/{name} in the target is not a tz data file"
    return None


def handle(ctx: ModuleContext) -> None:
    name = ctx.cfg.get("timezone")
    problem = zone_problem(ctx, name)
    if problem is not None:
        ctx.problems.append(Problem("timezone", f"{problem}; time zone left as it is"))
        return
    assert isinstance(name, str)
    ctx.target.write("/etc/timezone", f"{name}\n", mode=0o644)
    ctx.target.symlink("/etc/localtime", f"..{ZONEINFO}/{name}")
    ctx.log.info("time zone set to %s", name)


MODULE = ModuleSpec(
    name="timezone",
    stage=Stage.CONFIG,
    order=70,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("timezone",),
)
