"""``final_message``: one line to the console when the boot's work is done.

The text may use ``$UPTIME``, ``$TIMESTAMP``, ``$DATASOURCE``, ``$VERSION``
(also ``${UPTIME}`` or ``{{ uptime }}``, as cloud-init's templates allow).
"""

from __future__ import annotations

import re
import time

from bootseed.late import __version__
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

DEFAULT_MESSAGE = ("bootseed v. $VERSION finished at $TIMESTAMP. Datasource $DATASOURCE. "
                   "Up $UPTIME seconds")
_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]+)\}|\$(?P<plain>[A-Za-z_]+)|\{\{\s*(?P<jinja>[A-Za-z_]+)\s*\}\}"
)


def render(template: str, values: dict[str, str]) -> str:
    """Known variables are replaced; anything else stays as written."""

    def substitute(match: re.Match[str]) -> str:
        name = (match.group("braced") or match.group("plain") or match.group("jinja")).lower()
        return values.get(name, match.group(0))

    return _VARIABLE.sub(substitute, template)


def handle(ctx: ModuleContext) -> None:
    template = ctx.cfg.get("final_message", DEFAULT_MESSAGE)
    if not isinstance(template, str):
        raise ValueError("final_message: must be a string")
    values = {
        "uptime": f"{ctx.boot_uptime():.2f}",
        "timestamp": time.strftime("%a, %d %b %Y %H:%M:%S %z"),
        "datasource": ctx.instance.source,
        "version": __version__,
    }
    message = render(template, values)
    ctx.console(message)
    ctx.log.info("%s", message)


MODULE = ModuleSpec(
    name="final_message",
    stage=Stage.FINAL,
    order=100,
    frequency=Frequency.PER_BOOT,
    schema={"properties": {"final_message": {"type": "string"}}},
    handle=handle,
    aliases=("final-message",),
)
