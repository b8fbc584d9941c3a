"""``ntp``: time servers for the target's NTP client (cloud-init 22.4, Debian bookworm).

``ntp_client: auto`` (the default) takes chrony when it is installed in the
target, else systemd-timesyncd. Servers and pools go into a drop-in the client
reads next to its packaged configuration (chrony: ``sources.d``; timesyncd:
``timesyncd.conf.d``); for ntp (ntpsec in bookworm) the ``server``/``pool``
lines of ``ntp.conf`` are replaced. Without servers or pools the client keeps
its packaged defaults (Debian's pool). The client is restarted only on the host
and only when it is running. Installing a client is ``packages``' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import linegrammar
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

CHRONY_CONF = "/etc/chrony/chrony.conf"
CHRONY_SOURCES_DIR = "/etc/chrony/sources.d"
CHRONY_SOURCES = f"{CHRONY_SOURCES_DIR}/bootseed.sources"
TIMESYNCD_DROPIN = "/etc/systemd/timesyncd.conf.d/bootseed.conf"
NTP_CONFS = ("/etc/ntpsec/ntp.conf", "/etc/ntp.conf")
SCHEMA: dict[str, Any] = {
    "properties": {
        "ntp": {
            "type": ["object", "null"],
            "properties": {
                "enabled": {"type": "boolean"},
                "ntp_client": {"type": "string"},
                "servers": {"type": "array", "items": {"type": "string"}},
                "pools": {"type": "array", "items": {"type": "string"}},
                "config": {"type": "object"},
            },
        }
    }
}


@dataclass(frozen=True)
class Client:
    name: str  # as ntp_client names it
    service: str
    binaries: tuple[str, ...]  # any of these in the target means installed


CLIENTS = {
    c.name: c for c in (
        Client("chrony", "chrony", ("/usr/sbin/chronyd",)),
        Client("systemd-timesyncd", "systemd-timesyncd",
               ("/usr/lib/systemd/systemd-timesyncd", "/lib/systemd/systemd-timesyncd")),
        Client("ntp", "ntpsec", ("/usr/sbin/ntpd",)),
    )
}
AUTO_PREFERENCE = ("chrony", "systemd-timesyncd")


@dataclass(frozen=True)
class Sources:
    servers: tuple[str, ...]
    pools: tuple[str, ...]


def installed(ctx: ModuleContext, client: Client) -> bool:
    return any(ctx.target.exists(path) for path in client.binaries)


def read_hosts(ctx: ModuleContext, cfg: dict[str, Any], key: str) -> tuple[str, ...]:
    """The valid entries of ``ntp.<key>``; each bad one is reported and left out."""
    value = cfg.get(key, [])
    if not isinstance(value, list):
        ctx.problems.append(Problem(f"ntp.{key}", "must be a list of host names or "
                                    "addresses; ignored"))
        return ()
    hosts = []
    for index, entry in enumerate(value):
        try:
            hosts.append(linegrammar.host_or_address(entry, f"ntp.{key}[{index}]"))
        except linegrammar.LineGrammarError as exc:
            ctx.problems.append(Problem(f"ntp.{key}[{index}]", f"{exc}; left out"))
    return tuple(hosts)


def choose_client(ctx: ModuleContext, wanted: object) -> Client | None:
    if wanted in (None, "auto"):
        for name in AUTO_PREFERENCE:
            if installed(ctx, CLIENTS[name]):
                return CLIENTS[name]
        ctx.problems.append(Problem("ntp", "no NTP client is installed in the target "
                                    "(chrony or systemd-timesyncd); install one with "
                                    "'packages' or in the image; nothing configured"))
        return None
    if not isinstance(wanted, str) or wanted not in CLIENTS:
        ctx.problems.append(Problem("ntp.ntp_client", "must be auto, "
                                    + ", ".join(CLIENTS) + "; nothing configured"))
        return None
    client = CLIENTS[wanted]
    if not installed(ctx, client):
        ctx.problems.append(Problem(
            "ntp.ntp_client", f"{wanted} is not installed in the target; its configuration "
            "is written and takes effect once it is installed", Level.WARNING))
    return client


def configure_chrony(ctx: ModuleContext, sources: Sources) -> None:
    lines = [f"server {h} iburst" for h in sources.servers]
    lines += [f"pool {h} iburst" for h in sources.pools]
    ctx.target.write(CHRONY_SOURCES, "# Written by bootseed from 'ntp'\n"
                     + "\n".join(lines) + "\n", mode=0o644)
    conf = ctx.target.read_text(CHRONY_CONF, default="")
    if conf and not any(line.split()[:2] == ["sourcedir", CHRONY_SOURCES_DIR]
                                    for line in conf.splitlines()):
        ctx.problems.append(Problem(
            "ntp", f"{CHRONY_CONF} has no 'sourcedir {CHRONY_SOURCES_DIR}': chrony will not "
            f"read {CHRONY_SOURCES}", Level.WARNING))


def configure_timesyncd(ctx: ModuleContext, sources: Sources) -> None:
    ctx.target.write(TIMESYNCD_DROPIN, "# Written by bootseed from 'ntp'\n[Time]\n"
                     f"NTP={' '.join(sources.servers + sources.pools)}\n", mode=0o644)


def configure_ntp(ctx: ModuleContext, sources: Sources) -> None:
    path = next((p for p in NTP_CONFS if ctx.target.exists(p)), NTP_CONFS[0])
    kept = [line for line in ctx.target.read_text(path, default="").splitlines()
            if (line.split() or [""])[0] not in ("server", "pool")]
    lines = [f"server {h} iburst" for h in sources.servers]
    lines += [f"pool {h} iburst" for h in sources.pools]
    ctx.target.write(path, "\n".join([*kept, "# Servers from bootseed 'ntp'", *lines]) + "\n",
                     mode=0o644)


CONFIGURE = {"chrony": configure_chrony, "systemd-timesyncd": configure_timesyncd,
             "ntp": configure_ntp}


def restart_if_running(ctx: ModuleContext, client: Client) -> None:
    """On the host only: a running client picks the new sources up by a restart."""
    from bootseed.late.execute import run_captured

    if not ctx.target.is_host:
        return
    active = run_captured(ctx.target, ["systemctl", "is-active", "--quiet", client.service],
                          timeout=30)
    if active.returncode != 0:
        return
    run = run_captured(ctx.target, ["systemctl", "restart", client.service], timeout=120)
    if run.returncode != 0:
        ctx.problems.append(Problem("ntp", f"restarting {client.service} failed: "
                                    f"{run.output.strip()[-200:]}"))


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("ntp")
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        ctx.problems.append(Problem("ntp", "must be a mapping; nothing configured"))
        return
    if cfg.get("enabled", True) is False:
        ctx.log.info("ntp: enabled is false, nothing to do")
        return
    if "config" in cfg:
        ctx.problems.append(Problem("ntp.config", "custom client configuration (confpath, "
                                    "template, ...) is not supported; ignored", Level.NOTE))
    sources = Sources(read_hosts(ctx, cfg, "servers"), read_hosts(ctx, cfg, "pools"))
    client = choose_client(ctx, cfg.get("ntp_client"))
    if client is None:
        return
    if sources.servers or sources.pools:
        CONFIGURE[client.name](ctx, sources)
        ctx.log.info("ntp: %s configured with %d servers, %d pools", client.name,
                     len(sources.servers), len(sources.pools))
        restart_if_running(ctx, client)
    else:
        ctx.log.info("ntp: no servers or pools given; %s keeps its packaged defaults",
                     client.name)


MODULE = ModuleSpec(
    name="ntp",
    stage=Stage.CONFIG,
    order=60,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("ntp",),
)
