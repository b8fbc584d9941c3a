"""``resolv_conf``: a static ``/etc/resolv.conf`` (cloud-init 22.4 keys).

Only with ``manage_resolv_conf: true``. When ``/etc/resolv.conf`` is a link to
systemd-resolved's files, resolved owns it: nothing is written and that is
reported. Any other link is replaced by the file, never followed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import linegrammar
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

RESOLV_CONF = "/etc/resolv.conf"
RESOLVED_DIR = "/run/systemd/resolve/"
MAX_NAMESERVERS = 3  # glibc's MAXNS: later ones are never asked
_OPTION_NAME = re.compile(r"[a-z][a-z0-9-]*")
SCHEMA: dict[str, Any] = {
    "properties": {
        "manage_resolv_conf": {"type": "boolean"},
        "resolv_conf": {
            "type": "object",
            "properties": {
                "nameservers": {"type": "array", "items": {"type": "string"}},
                "searchdomains": {"type": "array", "items": {"type": "string"}},
                "domain": {"type": "string"},
                "sortlist": {"type": "array", "items": {"type": "string"}},
                "options": {"type": "object"},
            },
        },
    }
}


def _list(ctx: ModuleContext, cfg: dict[str, Any], key: str) -> list[Any]:
    value = cfg.get(key, [])
    if isinstance(value, list):
        return value
    ctx.problems.append(Problem(f"resolv_conf.{key}", "must be a list; ignored"))
    return []


def sortlist_entry(value: object, what: str) -> str:
    """``address`` or ``address/netmask`` (resolv.conf's sortlist form)."""
    if not isinstance(value, str):
        raise linegrammar.LineGrammarError(f"{what} must be an address[/netmask]")
    address, _, mask = value.partition("/")
    linegrammar.ip_address(address, what)
    if mask:
        linegrammar.ip_address(mask, what)
    return value


def option_words(ctx: ModuleContext, options: object) -> list[str]:
    if not isinstance(options, dict):
        ctx.problems.append(Problem("resolv_conf.options", "must be a mapping (rotate: true, "
                                    "timeout: 1); ignored"))
        return []
    words = []
    for name, value in options.items():
        where = f"resolv_conf.options.{name}"
        if not isinstance(name, str) or not _OPTION_NAME.fullmatch(name):
            ctx.problems.append(Problem("resolv_conf.options", "an option name is not a "
                                        "resolver option word; left out"))
        elif value is True:
            words.append(name)
        elif value is False:
            continue
        elif isinstance(value, int):
            words.append(f"{name}:{value}")
        else:
            ctx.problems.append(Problem(where, "must be true, false or a number; left out"))
    return words


def resolv_lines(ctx: ModuleContext, cfg: dict[str, Any]) -> list[str]:
    lines = ["# Written by bootseed from 'resolv_conf'"]
    servers = []
    for index, entry in enumerate(_list(ctx, cfg, "nameservers")):
        try:
            servers.append(linegrammar.ip_address(entry, f"resolv_conf.nameservers[{index}]"))
        except linegrammar.LineGrammarError as exc:
            ctx.problems.append(Problem(f"resolv_conf.nameservers[{index}]", f"{exc}; left out"))
    if len(servers) > MAX_NAMESERVERS:
        ctx.problems.append(Problem("resolv_conf.nameservers", f"the resolver uses only "
                                    f"{MAX_NAMESERVERS} name servers; the rest are left out",
                                    Level.WARNING))
    lines += [f"nameserver {s}" for s in servers[:MAX_NAMESERVERS]]
    domain = cfg.get("domain")
    if domain is not None:
        try:
            lines.append("domain " + linegrammar.hostname(
                domain if isinstance(domain, str) else "", "resolv_conf.domain"))
        except linegrammar.LineGrammarError as exc:
            ctx.problems.append(Problem("resolv_conf.domain", f"{exc}; left out"))
    searches = []
    for index, entry in enumerate(_list(ctx, cfg, "searchdomains")):
        where = f"resolv_conf.searchdomains[{index}]"
        try:
            searches.append(linegrammar.hostname(entry if isinstance(entry, str) else "", where))
        except linegrammar.LineGrammarError as exc:
            ctx.problems.append(Problem(where, f"{exc}; left out"))
    if searches:
        lines.append("search " + " ".join(searches))
    sorts = []
    for index, entry in enumerate(_list(ctx, cfg, "sortlist")):
        where = f"resolv_conf.sortlist[{index}]"
        try:
            sorts.append(sortlist_entry(entry, where))
        except (linegrammar.LineGrammarError, ipaddress.AddressValueError) as exc:
            ctx.problems.append(Problem(where, f"{exc}; left out"))
    if sorts:
        lines.append("sortlist " + " ".join(sorts))
    words = option_words(ctx, cfg.get("options", {}))
    if words:
        lines.append("options " + " ".join(words))
    return lines


def managed_by_resolved(ctx: ModuleContext) -> bool:
    """Whether /etc/resolv.conf is a link into systemd-resolved's files (not followed)."""
    import os
    import stat

    if not ctx.target.exists(RESOLV_CONF):
        return False
    if not stat.S_ISLNK(ctx.target.lstat(RESOLV_CONF).st_mode):
        return False
    with ctx.target.open_dir("/etc") as fd:
        link = os.readlink("resolv.conf", dir_fd=fd)
    absolute = os.path.normpath(os.path.join("/etc", link))
    return absolute.startswith(RESOLVED_DIR)


def handle(ctx: ModuleContext) -> None:
    manage = ctx.cfg.get("manage_resolv_conf", False)
    if manage is not True:
        if manage is not False:
            ctx.problems.append(Problem("manage_resolv_conf", "must be true or false; "
                                        "resolv.conf left as it is"))
        return
    cfg = ctx.cfg.get("resolv_conf")
    if not isinstance(cfg, dict):
        ctx.problems.append(Problem("resolv_conf", "must be a mapping (nameservers, "
                                    "searchdomains, ...); resolv.conf left as it is"))
        return
    if managed_by_resolved(ctx):
        ctx.problems.append(Problem("resolv_conf", f"{RESOLV_CONF} is a link into "
                                    f"{RESOLVED_DIR}: it is managed by systemd-resolved, "
                                    "nothing written (configure resolved instead)",
                                    Level.WARNING))
        return
    ctx.target.write(RESOLV_CONF, "\n".join(resolv_lines(ctx, cfg)) + "\n", mode=0o644)
    ctx.log.info("wrote %s", RESOLV_CONF)


MODULE = ModuleSpec(
    name="resolv_conf",
    stage=Stage.CONFIG,
    order=75,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("manage_resolv_conf",),
)
