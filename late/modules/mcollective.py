"""``mcollective``: the MCollective server's configuration and certificates.

Configuration only: MCollective is retired upstream and not in Debian
bookworm, so nothing is installed. ``conf`` settings are merged into
``/etc/mcollective/server.cfg`` (``key = value``, other lines kept);
``public-cert`` and ``private-cert`` become ``/etc/mcollective/ssl/
server-public.pem`` (0644) and ``server-private.pem`` (0600), and the SSL
security provider settings point at them, as cloud-init 22.4 does. A running
``mcollective`` service is restarted to read them.
"""

from __future__ import annotations

from typing import Any

from bootseed.late import services
from bootseed.late.handover import inifile
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

SERVER_CFG = "/etc/mcollective/server.cfg"
PUBLIC_CERT = "/etc/mcollective/ssl/server-public.pem"
PRIVATE_CERT = "/etc/mcollective/ssl/server-private.pem"
SERVICE = "mcollective"

SCHEMA: dict[str, Any] = {
    "properties": {
        "mcollective": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "conf": {
                    "type": "object",
                    "properties": {"public-cert": {"type": "string"},
                                   "private-cert": {"type": "string"}},
                    "additionalProperties": {"type": ["string", "number", "boolean"]},
                },
            },
        }
    }
}


def server_settings(conf: dict[str, Any]) -> list[inifile.Setting]:
    plain = {k: v for k, v in conf.items() if k not in ("public-cert", "private-cert")}
    if "public-cert" in conf:
        plain["plugin.ssl_server_public"] = PUBLIC_CERT
    if "private-cert" in conf:
        plain["plugin.ssl_server_private"] = PRIVATE_CERT
    if "public-cert" in conf or "private-cert" in conf:
        plain["securityprovider"] = "ssl"
    return inifile.settings_from({inifile.NO_SECTION: plain}, "mcollective.conf")


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("mcollective")
    if not isinstance(cfg, dict):
        return
    conf = cfg.get("conf") or {}
    if isinstance(conf.get("private-cert"), str):
        ctx.add_secret(conf["private-cert"])
    settings = server_settings(conf)
    if "public-cert" in conf:
        ctx.target.write(PUBLIC_CERT, str(conf["public-cert"]), mode=0o644)
    if "private-cert" in conf:
        ctx.target.write(PRIVATE_CERT, str(conf["private-cert"]), mode=0o600)
    existing = ctx.target.read_text(SERVER_CFG, default="")
    ctx.target.write(SERVER_CFG, inifile.merge(existing, settings), mode=0o644)
    problem = services.restart_if_running(ctx.target, SERVICE, "mcollective")
    if problem is not None:
        ctx.problems.append(problem)


MODULE = ModuleSpec(
    name="mcollective",
    stage=Stage.FINAL,
    order=16,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("mcollective",),
)
