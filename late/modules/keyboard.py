"""``keyboard``: the console and X keyboard layout (cloud-init 22.4, Debian).

Writes the ``XKB*`` lines of ``/etc/default/keyboard`` (keyboard-configuration's
file, read by console-setup and X); its other lines (``BACKSPACE``) are kept.
On the host a console-setup service is restarted so the console follows.
"""

from __future__ import annotations

import re
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

KEYBOARD_FILE = "/etc/default/keyboard"
DEFAULT_MODEL = "pc105"
# XKB names and option lists ("us,de", "ctrl:nocaps,grp:alt_shift_toggle"): nothing that
# could end the quoted shell value.
_XKB_VALUE = re.compile(r"[A-Za-z0-9_.,:()+-]*")
FIELDS = (("model", "XKBMODEL"), ("layout", "XKBLAYOUT"), ("variant", "XKBVARIANT"),
          ("options", "XKBOPTIONS"))
SCHEMA: dict[str, Any] = {
    "properties": {
        "keyboard": {
            "type": "object",
            "required": ["layout"],
            "properties": {
                "layout": {"type": "string"},
                "model": {"type": "string"},
                "variant": {"type": "string"},
                "options": {"type": "string"},
            },
        }
    }
}


def xkb_values(ctx: ModuleContext, cfg: dict[str, Any]) -> dict[str, str] | None:
    """``XKB*`` name -> value; None (each problem reported) when any is unusable."""
    values: dict[str, str] = {}
    bad = False
    defaults = {"model": DEFAULT_MODEL, "variant": "", "options": ""}
    for key, variable in FIELDS:
        value = cfg.get(key, defaults.get(key))
        if key == "layout" and not value:
            ctx.problems.append(Problem("keyboard.layout", "is required (like us or de)"))
            bad = True
        elif not isinstance(value, str) or not _XKB_VALUE.fullmatch(value):
            ctx.problems.append(Problem(f"keyboard.{key}", "must be an XKB name or a comma "
                                        "list of them (letters, digits, _ . , : ( ) + -)"))
            bad = True
        else:
            values[variable] = value
    return None if bad else values


def with_values(text: str, values: dict[str, str]) -> str:
    kept = [line for line in text.splitlines()
            if line.split("=", 1)[0].strip() not in values]
    return "".join(f"{line}\n" for line in [*(f'{k}="{v}"' for k, v in values.items()), *kept])


def apply_on_host(ctx: ModuleContext) -> None:
    from bootseed.late.execute import run_captured

    if not ctx.target.is_host:
        return
    enabled = run_captured(ctx.target, ["systemctl", "is-enabled", "--quiet",
                                        "console-setup.service"], timeout=30)
    if enabled.returncode == 0:
        run = run_captured(ctx.target, ["systemctl", "restart", "console-setup.service"],
                           timeout=120)
        if run.returncode != 0:
            ctx.problems.append(Problem("keyboard", "restarting console-setup failed: "
                                        f"{run.output.strip()[-200:]}"))


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("keyboard")
    if not isinstance(cfg, dict):
        ctx.problems.append(Problem("keyboard", "must be a mapping with at least 'layout'; "
                                    "keyboard left as it is"))
        return
    values = xkb_values(ctx, cfg)
    if values is None:
        return
    current = ctx.target.read_text(KEYBOARD_FILE, default="")
    ctx.target.write(KEYBOARD_FILE, with_values(current, values), mode=0o644)
    ctx.log.info("keyboard layout %s written to %s", values["XKBLAYOUT"], KEYBOARD_FILE)
    apply_on_host(ctx)


MODULE = ModuleSpec(
    name="keyboard",
    stage=Stage.CONFIG,
    order=5,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("keyboard",),
)
