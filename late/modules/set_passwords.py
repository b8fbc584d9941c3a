"""``set_passwords``: ``chpasswd``, ``password`` and ``ssh_pwauth``.

Passwords go straight into the target's ``/etc/shadow`` through the account-file
code (no ``chpasswd`` binary, so a ``--root`` target never touches the host's
accounts). Plain text is hashed with SHA-512 crypt, crypt hashes are written as
given, and ``R`` / ``RANDOM`` make a fresh random password that is shown on the
console only: every password is a secret for the redactor, and no message names
one. ``ssh_pwauth`` is an sshd drop-in of its own.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import sshd
from bootseed.late.accounts import AccountError, AccountsDB
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.passwdhash import sha512_crypt
from bootseed.late.usercfg import default_user_name

PWAUTH_DROPIN = f"{sshd.DROPIN_DIR}/50-bootseed-pwauth.conf"
RANDOM_WORDS = ("R", "RANDOM")
RANDOM_LENGTH = 20
_RANDOM_ALPHABET = string.ascii_letters + string.digits
# A crypt(3) hash: ``$id$`` (MD5, bcrypt, SHA-256, SHA-512, scrypt, yescrypt, gost-yescrypt),
# then at least a salt and a digest, with nothing that would break a shadow line.
HASH_RE = re.compile(r"^\$(?:1|2[abxy]|5|6|7|y|gy)\$[^:\s]*\$[^:\s]+$")
_TRUE_WORDS = ("yes", "true", "on", "1")
_FALSE_WORDS = ("no", "false", "off", "0")

_USER_ENTRY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "password": {"type": "string"},
        "type": {"type": "string", "enum": ["text", "hash", "RANDOM"]},
    },
    "required": ["name"],
}
SCHEMA: dict[str, Any] = {
    "properties": {
        "chpasswd": {
            "type": "object",
            "properties": {
                "expire": {"type": "boolean"},
                "list": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                },
                "users": {"type": "array", "items": _USER_ENTRY},
            },
        },
        "password": {"type": "string"},
        "ssh_pwauth": {
            "oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["yes", "no", "unchanged"]}]
        },
    }
}


@dataclass(frozen=True)
class PasswordChange:
    """One account's new password as the config gives it; ``where`` names the config item."""

    where: str
    user: str
    kind: str  # "text", "hash" or "random"
    value: str = ""


def random_password() -> str:
    return "".join(secrets.choice(_RANDOM_ALPHABET) for _ in range(RANDOM_LENGTH))


def _kind_of(value: str) -> str:
    if value in RANDOM_WORDS:
        return "random"
    return "hash" if HASH_RE.match(value) else "text"


def _from_list(value: Any, problems: list[Problem]) -> list[PasswordChange]:
    """``chpasswd.list``: ``user:password`` lines, as one multi-line string or a list."""
    if isinstance(value, str):
        lines = [line.strip() for line in value.splitlines()]
        lines = [line for line in lines if line]
    elif isinstance(value, list):
        lines = value
    else:
        problems.append(Problem("chpasswd.list", "expected a multi-line string or a list of "
                                "'user:password' strings"))
        return []
    changes = []
    for index, line in enumerate(lines):
        where = f"chpasswd.list[{index}]"
        user, sep, password = line.partition(":") if isinstance(line, str) else ("", "", "")
        if not sep or not user.strip() or not password:
            # The line itself is never quoted: it may be all password.
            problems.append(Problem(where, "not a 'user:password' string"))
            continue
        changes.append(PasswordChange(where, user.strip(), _kind_of(password), password))
    return changes


def _from_users(value: Any, problems: list[Problem]) -> list[PasswordChange]:
    """``chpasswd.users``: ``{name, password, type: text|hash|RANDOM}`` entries."""
    if not isinstance(value, list):
        problems.append(Problem("chpasswd.users", "expected a list of {name, password, type}"))
        return []
    changes = []
    for index, entry in enumerate(value):
        where = f"chpasswd.users[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not entry["name"].strip():
            problems.append(Problem(where, "expected a mapping with a 'name'"))
            continue
        name, kind = entry["name"].strip(), entry.get("type", "text")
        password = entry.get("password")
        if kind == "RANDOM" or (kind == "text" and password in RANDOM_WORDS):
            changes.append(PasswordChange(where, name, "random"))
        elif kind not in ("text", "hash"):
            problems.append(Problem(where, f"user {name!r}: type must be text, hash or RANDOM"))
        elif not isinstance(password, str) or not password:
            problems.append(Problem(where, f"user {name!r}: no password given"))
        elif kind == "hash" and not HASH_RE.match(password):
            problems.append(Problem(where, f"user {name!r}: type is hash but the password is "
                                    "not a crypt hash ($id$salt$digest); not set"))
        else:
            changes.append(PasswordChange(where, name, kind, password))
    return changes


def _default_user_password(ctx: ModuleContext) -> tuple[str, str] | None:
    """``(where, password)`` for the default user: the ``password`` key, else the OVF
    environment's ``password`` property (kept under the meta-data's ``sensitive``)."""
    given = ctx.cfg.get("password")
    if isinstance(given, str) and given:
        return "password", given
    sensitive = ctx.instance.metadata.get("sensitive")
    if isinstance(sensitive, dict) and isinstance(sensitive.get("password"), str) \
            and sensitive["password"]:
        return "meta-data password", sensitive["password"]
    return None


def plan(ctx: ModuleContext, problems: list[Problem]) -> tuple[list[PasswordChange], bool]:
    """The password changes the config asks for, and whether they expire."""
    chpasswd = ctx.cfg.get("chpasswd")
    changes: list[PasswordChange] = []
    expire = True
    if isinstance(chpasswd, dict):
        if chpasswd.get("list"):
            changes += _from_list(chpasswd["list"], problems)
        if chpasswd.get("users") is not None:
            changes += _from_users(chpasswd["users"], problems)
        if "expire" in chpasswd:
            if isinstance(chpasswd["expire"], bool):
                expire = chpasswd["expire"]
            else:
                problems.append(Problem("chpasswd.expire", "expected true or false; "
                                        "passwords expire"))
    elif chpasswd is not None:
        problems.append(Problem("chpasswd", "expected a mapping (list, users, expire)"))
    # The default user's password applies only when chpasswd names no account itself.
    if not changes and not _names_any_account(chpasswd):
        default = _default_user_password(ctx)
        if default is not None:
            where, password = default
            user = default_user_name(ctx.cfg)
            if user is None:
                problems.append(Problem(where, "no default user to set it for", Level.WARNING))
            else:
                changes.append(PasswordChange(where, user, _kind_of(password), password))
    return changes, expire


def _names_any_account(chpasswd: Any) -> bool:
    return isinstance(chpasswd, dict) and bool(chpasswd.get("list") or chpasswd.get("users"))


def _apply(ctx: ModuleContext, changes: list[PasswordChange], expire: bool) -> None:
    db = AccountsDB.load(ctx.target)
    randoms: dict[str, str] = {}
    done: list[str] = []
    for change in changes:
        if db.user(change.user) is None:
            ctx.problems.append(Problem(change.where,
                                        f"user {change.user!r} does not exist in the target"))
            continue
        shown: str | None = None
        if change.kind == "random":
            shown = random_password()
            ctx.add_secret(shown)
            hashed = sha512_crypt(shown)
        elif change.kind == "text":
            hashed = sha512_crypt(change.value)
        else:
            hashed = change.value
        ctx.add_secret(hashed)
        try:
            db.set_password_hash(change.user, hashed)
        except AccountError as exc:
            ctx.problems.append(Problem(change.where, f"user {change.user!r}: {exc}"))
            continue
        if expire:
            db.expire_password(change.user)
        # The last change of an account wins, as with chpasswd reading lines in order.
        randoms.pop(change.user, None)
        if shown is not None:
            randoms[change.user] = shown
        done = [name for name in done if name != change.user] + [change.user]
    db.save()
    if done:
        ctx.log.info("set the password of %s%s", ", ".join(done),
                     " (expired: to be changed at first login)" if expire else "")
    if randoms:
        # The console only: the one place a random password is ever shown.
        lines = "".join(f"{user}:{password}\n" for user, password in randoms.items())
        ctx.console(f"bootseed: set the following 'random' passwords\n{lines}")


def pwauth_setting(value: Any) -> str | None:
    """``yes`` / ``no`` for the drop-in, ``None`` to leave sshd's own setting."""
    if value is None or value == "unchanged":
        return None
    if value is True or (isinstance(value, str) and value.lower() in _TRUE_WORDS):
        return "yes"
    if value is False or (isinstance(value, str) and value.lower() in _FALSE_WORDS):
        return "no"
    raise ValueError(f"{value!r} is not true, false or 'unchanged'")


def _ssh_pwauth(ctx: ModuleContext) -> None:
    try:
        setting = pwauth_setting(ctx.cfg.get("ssh_pwauth"))
    except ValueError as exc:
        ctx.problems.append(Problem("ssh_pwauth", f"{exc}; sshd left as it is"))
        return
    if setting is None:
        changed = sshd.remove_dropin(ctx.target, PWAUTH_DROPIN)
    else:
        text = ("# Written by bootseed from cloud-config ssh_pwauth.\n"
                f"PasswordAuthentication {setting}\n")
        changed = sshd.write_dropin(ctx.target, PWAUTH_DROPIN, text)
        ctx.log.info("sshd PasswordAuthentication %s (%s)", setting, PWAUTH_DROPIN)
        missing = sshd.dropin_not_included(ctx.target, PWAUTH_DROPIN, "ssh_pwauth")
        if missing is not None:
            ctx.problems.append(missing)
    if changed:
        reload_problem = sshd.reload_if_running(ctx.target, "ssh_pwauth")
        if reload_problem is not None:
            ctx.problems.append(reload_problem)


def handle(ctx: ModuleContext) -> None:
    problems: list[Problem] = []
    changes, expire = plan(ctx, problems)
    # Secrets first, before anything could log a line that mentions one.
    for change in changes:
        if change.value:
            ctx.add_secret(change.value)
    ctx.problems.extend(problems)
    if changes:
        _apply(ctx, changes, expire)
    _ssh_pwauth(ctx)


MODULE = ModuleSpec(
    name="set_passwords",
    stage=Stage.CONFIG,
    order=15,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    # Always runs: the OVF password arrives in meta-data, not in a config key.
    activate_keys=(),
)
