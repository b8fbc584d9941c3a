"""``ssh_authkey_fingerprints``: print each configured user's authorized key
fingerprints to the console, so an operator can check which keys may log in."""

from __future__ import annotations

import hashlib
from typing import Any

from bootseed.late.accounts import AccountError, AccountsDB
from bootseed.late.authkeys import parse_key_line
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.sshkeys import SSHKeyError, hex_fingerprint
from bootseed.late.usercfg import plan_users

COLUMNS = ("Keytype", "Fingerprint ({hash})", "Options", "Comment")
SCHEMA: dict[str, Any] = {
    "properties": {
        "no_ssh_fingerprints": {"type": "boolean"},
        "authkey_hash": {"type": "string"},
    }
}


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    return [rule, fmt(header), rule, *(fmt(r) for r in rows), rule]


def user_report(ctx: ModuleContext, db: AccountsDB, name: str, hash_name: str) -> list[str]:
    user = db.user(name)
    if user is None:
        return [f"user {name} does not exist; no authorized keys to show"]
    path = f"{user.home.rstrip('/')}/.ssh/authorized_keys"
    text = ctx.target.read_text(path, default="")
    rows: list[tuple[str, ...]] = []
    for line in text.splitlines():
        key = parse_key_line(line)
        if key is None:
            continue
        try:
            fp = hex_fingerprint(key.blob, hash_name)
        except SSHKeyError:
            fp = "(unreadable key)"
        rows.append((key.keytype, fp, key.options or "-", key.comment or "-"))
    if not rows:
        return [f"no authorized SSH keys fingerprints found for user {name}."]
    header = tuple(c.format(hash=hash_name) for c in COLUMNS)
    return [f"Authorized keys from {path} for user {name}", *_table(rows, header)]


def handle(ctx: ModuleContext) -> None:
    if ctx.cfg.get("no_ssh_fingerprints", False):
        ctx.log.info("no_ssh_fingerprints is set; not printing authorized key fingerprints")
        return
    hash_name = str(ctx.cfg.get("authkey_hash", "sha256")).lower()
    if hash_name not in hashlib.algorithms_available:
        raise ValueError(f"authkey_hash: unknown hash {hash_name!r}")
    try:
        db = AccountsDB.load(ctx.target)
    except AccountError as exc:
        raise ValueError(str(exc)) from None
    for spec in plan_users(ctx.cfg).users:
        ctx.console("\n".join(user_report(ctx, db, spec.name, hash_name)))


MODULE = ModuleSpec(
    name="ssh_authkey_fingerprints",
    stage=Stage.FINAL,
    order=70,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
