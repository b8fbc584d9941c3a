"""``ssh_import_id``: users' SSH keys fetched from a key server (cloud-init 22.4).

Each ``users[].ssh_import_id`` entry (a list, or one string as cloud-init's
runtime takes it) and the top-level ``ssh_import_id`` (for the default user)
names ids as ``ssh-import-id`` does: ``gh:USER`` (GitHub, ``/USER.keys``),
``lp:USER`` or a bare ``USER`` (Launchpad, ``/~USER/+sshkeys``). The keys are
merged into the user's ``authorized_keys`` like ``ssh_authorized_keys``.

The servers' URLs are a bootseed extension, ``ssh_import_id_servers`` (URL
templates with ``{user}``), so a site mirror or a test server can stand in.
An id whose keys cannot be fetched (server unreachable, no such user) is an
error naming the id and the server; the keys of the other ids are still
written, then the module fails, as cloud-init's does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

SERVERS_KEY = "ssh_import_id_servers"
DEFAULT_SERVERS = {
    "lp": "https://launchpad.net/~{user}/+sshkeys",
    "gh": "https://github.com/{user}.keys",
}
# Time for all of this module's fetches together, and for one attempt.
TOTAL_SECONDS = 60.0
ATTEMPT_SECONDS = 10.0
MAX_KEYS_BYTES = 256 * 1024
# Account names as GitHub and Launchpad allow them: nothing that could change the URL.
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_IDS = {"oneOf": [{"type": "array", "items": {"type": "string"}},
                  {"type": "string",
                   "x-note": "ssh_import_id as a string: cloud-init's runtime accepts it, its "
                             "schema (22.4) wants a list"}]}
SCHEMA: dict[str, Any] = {
    "properties": {
        "ssh_import_id": _IDS,
        SERVERS_KEY: {
            "type": "object",
            "properties": {
                "lp": {"type": "string", "pattern": r"\{user\}"},
                "gh": {"type": "string", "pattern": r"\{user\}"},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
            },
            "x-unknown-keys": "warn",
        },
    }
}


class SshImportError(RuntimeError):
    """Some ids' keys could not be imported; the message names each."""


@dataclass(frozen=True)
class KeyId:
    server: str  # "lp" or "gh"
    user: str

    def __str__(self) -> str:
        return f"{self.server}:{self.user}"


def parse_id(text: str) -> KeyId:
    """``gh:USER``, ``lp:USER`` or ``USER`` (Launchpad); ValueError for anything else."""
    server, sep, user = text.strip().partition(":")
    if not sep:
        server, user = "lp", server
    if server not in DEFAULT_SERVERS:
        raise ValueError(f"{text!r}: unknown key server {server!r} (gh: or lp:)")
    if not _USER.fullmatch(user):
        raise ValueError(f"{text!r}: not an account name")
    return KeyId(server, user)


def key_url(key_id: KeyId, servers: dict[str, Any]) -> str:
    template = servers.get(key_id.server) or DEFAULT_SERVERS[key_id.server]
    return str(template).replace("{user}", key_id.user)


def fetch_keys(key_id: KeyId, servers: dict[str, Any], budget: Any) -> list[str]:
    """The key lines the server lists for the id; SshImportError says why not."""
    from bootseed.early.http import FetchError, fetch

    url = key_url(key_id, servers)
    timeout = float(servers.get("timeout") or ATTEMPT_SECONDS)
    try:
        response = fetch(url, budget=budget, timeout=timeout, attempts=2,
                         max_bytes=MAX_KEYS_BYTES)
    except FetchError as exc:
        raise SshImportError(f"{key_id}: key server unreachable ({exc})") from exc
    if response.status == 404:
        raise SshImportError(f"{key_id}: no such user at {url}")
    if not response.ok:
        raise SshImportError(f"{key_id}: {url} answered HTTP {response.status}")
    text = response.body.decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()]


def wanted(ctx: ModuleContext) -> list[tuple[str, str, list[str]]]:
    """``(where, user name, ids)`` for every user with ids to import."""
    from bootseed.late.usercfg import plan_users

    found = []
    plan = plan_users(ctx.cfg)
    for spec in plan.users:
        ids = spec.config.get("ssh_import_id")
        if spec.is_default and "ssh_import_id" in ctx.cfg:
            ids = ctx.cfg["ssh_import_id"]
            where = "ssh_import_id"
        else:
            where = f"{spec.where}.ssh_import_id"
        if not ids:
            continue
        found.append((where, spec.name, [ids] if isinstance(ids, str) else list(ids)))
    if "ssh_import_id" in ctx.cfg and plan.default is None:
        ctx.problems.append(Problem("ssh_import_id", "there is no default user to import the "
                                    "keys for; ignored", Level.WARNING))
    return found


def handle(ctx: ModuleContext) -> None:
    from bootseed.early.budget import Budget
    from bootseed.late.accounts import AccountsDB
    from bootseed.late.authkeys import parse_keys, write_authorized_keys

    servers = ctx.cfg.get(SERVERS_KEY) or {}
    if not isinstance(servers, dict):
        ctx.problems.append(Problem(SERVERS_KEY, "must be a mapping; the default servers "
                                    "are used"))
        servers = {}
    budget = Budget(TOTAL_SECONDS)
    db = AccountsDB.load(ctx.target)
    failed: list[str] = []
    for where, name, ids in wanted(ctx):
        user = db.user(name)
        if user is None:
            failed.append(f"{where}: user {name!r} does not exist")
            continue
        keys = []
        for index, text in enumerate(ids):
            try:
                key_id = parse_id(str(text))
                lines = fetch_keys(key_id, servers, budget)
            except (ValueError, SshImportError) as exc:
                failed.append(f"{where}[{index}]: {exc}")
                continue
            parsed, problems = parse_keys(lines, f"{key_id} line")
            ctx.problems += [Problem(f"{where}[{index}]", p, Level.WARNING) for p in problems]
            if not parsed:
                ctx.problems.append(Problem(f"{where}[{index}]", f"{key_id}: the key server "
                                            "lists no keys", Level.WARNING))
            keys += parsed
            ctx.log.info("%s: %d key(s) from %s for %s", where, len(parsed), key_id, name)
        if keys:
            write_authorized_keys(ctx.target, user.home, user.uid, user.gid, keys)
    if failed:
        raise SshImportError("; ".join(failed))


MODULE = ModuleSpec(
    name="ssh_import_id",
    stage=Stage.CONFIG,
    # cloud-init 22.4 (Debian): first of the config stage, before keyboard and locale.
    order=3,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("users", "user", "ssh_import_id"),
)
