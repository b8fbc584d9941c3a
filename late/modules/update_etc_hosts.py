"""``update_etc_hosts``: manage /etc/hosts in the target (``manage_etc_hosts``).

``true``/``"template"`` rewrites the whole file every boot from a template;
``"localhost"`` only keeps the ``127.0.1.1`` line pointing at this host's names and
leaves everything else as the admin wrote it; ``false`` (the default) does nothing.
"""

from __future__ import annotations

from typing import Any

from bootseed.late.hostnames import HostnameChoice, choose
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

HOSTS = "/etc/hosts"
SELF_ADDRESS = "127.0.1.1"
SCHEMA: dict[str, Any] = {
    "properties": {
        "manage_etc_hosts": {
            "oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["template", "localhost"]}]
        }
    }
}

TEMPLATE = """\
# Managed by bootseed (cloud-config manage_etc_hosts); rewritten on every boot.
# To keep your own edits, set manage_etc_hosts: false (or "localhost").
{self_address} {names}
127.0.0.1 localhost

# IPv6 loopback and multicast names
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


def _names(choice: HostnameChoice) -> str:
    return choice.hostname if choice.fqdn == choice.hostname else f"{choice.fqdn} {choice.hostname}"


def render_template(choice: HostnameChoice) -> str:
    return TEMPLATE.format(self_address=SELF_ADDRESS, names=_names(choice))


def update_localhost_line(text: str, choice: HostnameChoice) -> str:
    wanted = f"{SELF_ADDRESS} {_names(choice)}"
    lines = text.splitlines()
    found = False
    out: list[str] = []
    for line in lines:
        if line.split("#", 1)[0].split()[:1] == [SELF_ADDRESS]:
            if not found:
                out.append(wanted)
            found = True
            continue
        out.append(line)
    if not found:
        # Put it just after the 127.0.0.1 line where people expect it.
        at = next((i + 1 for i, ln in enumerate(out) if ln.split()[:1] == ["127.0.0.1"]), 0)
        out.insert(at, wanted)
    return "".join(line + "\n" for line in out)


def handle(ctx: ModuleContext) -> None:
    mode = ctx.cfg.get("manage_etc_hosts", False)
    if mode is False or mode is None:
        ctx.log.info("manage_etc_hosts is false; %s left alone", HOSTS)
        return
    if mode not in (True, "template", "localhost"):
        raise ValueError(
            f"manage_etc_hosts: {mode!r} is not true, false, 'template' or 'localhost'"
        )
    choice = choose(ctx.cfg, ctx.instance)
    if mode == "localhost":
        current = ctx.target.read_text(HOSTS, default="")
        text = update_localhost_line(current, choice)
    else:
        current = ctx.target.read_text(HOSTS, default="")
        text = render_template(choice)
    if text != current:
        ctx.target.write(HOSTS, text, mode=0o644)
        ctx.log.info("updated %s for %s", HOSTS, choice.fqdn)


MODULE = ModuleSpec(
    name="update_etc_hosts",
    stage=Stage.INIT,
    order=50,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
