"""``users`` and ``groups``: accounts, homes, sudo rules and user SSH keys in the target.

Everything is computed against the target's own account files (never the host's):
new homes are made first, then the account files are saved in one go, then keys
and sudo rules follow, so a crash at any point is repaired by the next run. A bad
entry is reported by position and the rest still apply.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bootseed.late.accounts import (
    AccountError,
    AccountsDB,
    GroupEntry,
    check_name,
    copy_skel,
    parse_expiredate,
)
from bootseed.late.authkeys import AuthorizedKey, parse_keys, write_authorized_keys
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.passwdhash import matches, sha512_crypt
from bootseed.late.target import TargetRoot
from bootseed.late.usercfg import UserSpec, plan_users

# The largest uid/gid: 2**32 - 1 is (uid_t)-1, "no id", for the kernel.
MAX_ID = 2**32 - 2
SUDOERS_DROPIN = "/etc/sudoers.d/90-bootseed-users"
_SUDO_HEADER = "# Created by bootseed from cloud-config 'users'; edits to a user's block are\n"
_SUDO_HEADER += "# replaced on the next run that configures that user.\n"
_BLOCK_RE = re.compile(r"^# User rules for (\S+)$")
_UNSUPPORTED = (
    "snapuser",
    "selinux_user",
    "doas",
    "ssh_redirect_user",
    "inactive",
)


class UsersGroupsError(RuntimeError):
    """Some entries could not be applied; the message lists each with where it is."""


_STR_OR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_USER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "gecos": {"type": "string"},
        "homedir": {"type": "string"},
        "primary_group": {"type": "string"},
        "groups": {"oneOf": [*_STR_OR_LIST["oneOf"], {"type": "object"}]},
        "shell": {"type": "string"},
        "sudo": {
            "oneOf": [
                {"type": "string"},
                # cloud-init 22.4's schema wants a string (a list came in 24.2); its
                # runtime writes each rule of a list.
                {"type": "array", "items": {"type": "string"},
                 "x-note": "sudo as a list: cloud-init's runtime accepts it, its schema "
                           "(22.4) wants a string"},
                {"type": "boolean", "const": False},
                {"type": "null"},
            ]
        },
        "lock_passwd": {"type": "boolean"},
        "passwd": {"type": "string"},
        "hashed_passwd": {"type": "string"},
        "plain_text_passwd": {"type": "string"},
        "ssh_authorized_keys": {"type": "array", "items": {"type": "string"}},
        "system": {"type": "boolean"},
        "no_create_home": {"type": "boolean"},
        "no_user_group": {"type": "boolean"},
        # bootseed writes the account files itself and makes no lastlog or faillog
        # entries: what no_log_init asks for is what always happens.
        "no_log_init": {"type": "boolean"},
        "uid": {
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]
        },
        "create_groups": {"type": "boolean"},
        "expiredate": {"type": "string"},
        # Imported by the ssh_import_id module (config stage), as in cloud-init.
        "ssh_import_id": {
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "string",
                 "x-note": "ssh_import_id as a string: cloud-init's runtime accepts it, its "
                           "schema (22.4) wants a list"},
            ]
        },
        # Keys cloud-init knows that bootseed reports as not supported when used.
        "snapuser": {"type": "string"},
        "selinux_user": {"type": "string"},
        "doas": {"type": "array"},
        "ssh_redirect_user": {"type": "boolean"},
        "inactive": {"type": "string"},
    },
    "required": ["name"],
    # A misspelt key would be silently ignored: say so, as cloud-init 22.4's schema does.
    "x-unknown-keys": "warn",
}
# The distribution's default user (bootseed's own system config) is not user-data that
# cloud-init's schema would check: its list of sudo rules needs no note.
_DEFAULT_USER_SCHEMA: dict[str, Any] = {
    **_USER_SCHEMA,
    "properties": {**_USER_SCHEMA["properties"], "sudo": {"oneOf": [
        alternative for alternative in _USER_SCHEMA["properties"]["sudo"]["oneOf"]
        if "x-note" not in alternative] + [{"type": "array", "items": {"type": "string"}}]}},
}
SCHEMA: dict[str, Any] = {
    "properties": {
        "groups": {
            "oneOf": [
                {"type": "string"},
                {"type": "object"},
                {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
            ]
        },
        "users": {
            "oneOf": [
                {"type": "string"},
                {"type": "object"},
                {
                    "type": "array",
                    "items": {"oneOf": [{"type": "string"}, _USER_SCHEMA]},
                },
            ]
        },
        "user": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        # System config; read here for system_info.default_user.
        "system_info": {
            "type": "object",
            "properties": {"default_user": {"oneOf": [_DEFAULT_USER_SCHEMA,
                                                      {"type": "null"}]}},
        },
    }
}


@dataclass
class _Run:
    ctx: ModuleContext
    db: AccountsDB
    problems: list[str] = field(default_factory=list)
    new_homes: list[tuple[str, int, int]] = field(default_factory=list)
    keys: list[tuple[str, list[AuthorizedKey]]] = field(default_factory=list)
    sudo: dict[str, list[str] | None] = field(default_factory=dict)


def _as_names(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    if isinstance(value, dict):
        return [str(k) for k in value]
    raise AccountError(f"{where}: expected a name, a comma list or a list of names")


def parse_groups(value: Any) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """``groups`` as (where, name, members) triples plus problems."""
    out: list[tuple[str, str, list[str]]] = []
    problems: list[str] = []
    if value is None:
        return out, problems
    items: list[Any]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, dict):
        items = [{k: v} for k, v in value.items()]
    elif isinstance(value, list):
        items = value
    else:
        return out, [f"groups: expected a list, got {type(value).__name__}"]
    for index, item in enumerate(items):
        where = f"groups[{index}]"
        try:
            if isinstance(item, str):
                out.append((where, check_name(item, "group name"), []))
            elif isinstance(item, dict):
                for name, members in item.items():
                    names = [] if members is None else _as_names(members, f"{where}.{name}")
                    out.append((where, check_name(str(name), "group name"), names))
            else:
                raise AccountError(f"expected a name or {{name: [members]}}, got {item!r}")
        except AccountError as exc:
            problems.append(f"{where}: {exc}")
    return out, problems


def _ensure_group(
    run: _Run, name: str, create: bool, where: str, system: bool = False
) -> GroupEntry:
    group = run.db.group(name)
    if group is not None:
        return group
    if not create:
        raise AccountError(f"{where}: group {name!r} does not exist and create_groups is false")
    run.ctx.log.info("creating group %s", name)
    return run.db.add_group(name, system=system)


def _password_hash(run: _Run, cfg: dict[str, Any]) -> str | None:
    for key in ("hashed_passwd", "passwd"):
        if isinstance(cfg.get(key), str) and cfg[key]:
            run.ctx.add_secret(cfg[key])
            return str(cfg[key])
    plain = cfg.get("plain_text_passwd")
    if isinstance(plain, str) and plain:
        run.ctx.add_secret(plain)
        hashed = sha512_crypt(plain)
        run.ctx.add_secret(hashed)
        return hashed
    return None


def _default_shell(target: TargetRoot) -> str:
    for line in target.read_text("/etc/default/useradd", default="").splitlines():
        key, _, value = line.strip().partition("=")
        if key == "SHELL" and value.strip():
            return value.strip()
    return "/bin/sh"


def _create_user(run: _Run, spec: UserSpec) -> None:
    cfg, db, name = spec.config, run.db, spec.name
    system = bool(cfg.get("system", False))
    create_groups = bool(cfg.get("create_groups", True))
    uid: int
    if cfg.get("uid") is not None:
        uid = int(cfg["uid"])
        if not 0 <= uid <= MAX_ID:
            raise AccountError(f"uid {uid} is out of range (0-{MAX_ID})")
        if any(u.uid == uid for u in db.users()):
            raise AccountError(f"uid {uid} is already used")
    else:
        uid = db.free_uid(system)
    primary = cfg.get("primary_group")
    if primary:
        group = _ensure_group(run, str(primary), create_groups, "primary_group", system)
    elif cfg.get("no_user_group"):
        group = _ensure_group(run, "users", True, "no_user_group", system)
    else:
        # The user's own group; one left behind by an interrupted run is adopted.
        group = db.group(name) or db.add_group(
            name, gid=db.free_gid(system, prefer=uid), system=system
        )
    home = str(cfg.get("homedir") or f"/home/{name}")
    if not PurePosixPath(home).is_absolute():
        raise AccountError(f"homedir {home!r} must be an absolute path")
    if ".." in PurePosixPath(home).parts:
        raise AccountError(f"homedir {home!r} must not contain '..'")
    shell = str(cfg.get("shell") or _default_shell(run.ctx.target))
    hashed = _password_hash(run, cfg) or "!"
    db.add_user(name, uid, group.gid, str(cfg.get("gecos", "")), home, shell, hashed)
    run.ctx.log.info("created user %s (uid %d, gid %d)", name, uid, group.gid)
    if not cfg.get("no_create_home") and not system:
        run.new_homes.append((home, uid, group.gid))


def _update_existing(run: _Run, spec: UserSpec) -> None:
    cfg = spec.config
    run.ctx.log.info("user %s already exists; updating groups, password and keys", spec.name)
    current = run.db.shadow(spec.name)
    plain = cfg.get("plain_text_passwd")
    if isinstance(plain, str) and plain and current and matches(plain, current.hash):
        # Already set on an earlier run: keep the hash (and its salt) so re-runs converge.
        run.ctx.add_secret(plain)
        return
    hashed = _password_hash(
        run, {k: cfg[k] for k in ("hashed_passwd", "plain_text_passwd") if cfg.get(k)}
    )
    if hashed and not (current and current.hash.lstrip("!") == hashed):
        run.db.set_password_hash(spec.name, hashed)


def _apply_user(run: _Run, spec: UserSpec) -> None:
    cfg, db, name = spec.config, run.db, spec.name
    check_name(name, "user name")
    for key in _UNSUPPORTED:
        if key in cfg:
            run.ctx.log.warning("%s (%s): '%s' is not supported; ignored", spec.where, name, key)
    if db.user(name) is None:
        _create_user(run, spec)
    else:
        _update_existing(run, spec)
    if cfg.get("groups") is not None:
        create = bool(cfg.get("create_groups", True))
        for group in _as_names(cfg["groups"], "groups"):
            _ensure_group(run, check_name(group, "group name"), create, "groups")
            db.add_member(group, name)
    if cfg.get("lock_passwd", True):
        db.lock_password(name)
    elif not db.unlock_password(name):
        run.ctx.log.warning(
            "%s (%s): lock_passwd is false but the account has no password; left locked",
            spec.where,
            name,
        )
    if cfg.get("expiredate"):
        db.set_expire(name, parse_expiredate(cfg["expiredate"]))
    if "sudo" in cfg:
        sudo = cfg["sudo"]
        if sudo is False:
            run.sudo[name] = []
        elif sudo is True:
            raise AccountError("sudo: true is not a rule; give a rule such as 'ALL=(ALL) ALL'")
        elif sudo is not None:
            rules = [sudo] if isinstance(sudo, str) else sudo
            if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
                raise AccountError("sudo: expected a rule string or a list of rule strings")
            if any("\n" in r for r in rules):
                raise AccountError("sudo: a rule must not contain a newline")
            run.sudo[name] = rules
    if cfg.get("ssh_authorized_keys"):
        value = cfg["ssh_authorized_keys"]
        keys, problems = parse_keys(
            [value] if isinstance(value, str) else list(value), "ssh_authorized_keys"
        )
        run.problems.extend(f"{spec.where} ({name}): {p}" for p in problems)
        run.keys.append((name, keys))


def _make_home(run: _Run, home: str, uid: int, gid: int) -> None:
    """Build the home under a temporary name and rename it into place when complete, so
    a crash never leaves a half-copied home that a re-run would take as existing."""
    target = run.ctx.target
    if target.exists(home):
        run.ctx.log.info("home %s already exists; not copying /etc/skel", home)
        return
    parent, name = PurePosixPath(home).parent, PurePosixPath(home).name
    building = f".{name}.bootseed-new"
    with target.open_dir(parent, create=True) as parent_fd:
        try:
            shutil.rmtree(building, dir_fd=parent_fd)  # left by a run that was cut off
        except FileNotFoundError:
            pass
        os.mkdir(building, run.db.ranges.home_mode, dir_fd=parent_fd)
        os.chmod(building, run.db.ranges.home_mode, dir_fd=parent_fd)
        copy_skel(target, str(parent / building), uid, gid)
        os.chown(building, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
        os.rename(building, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)


def render_sudoers(existing: str, rules: dict[str, list[str] | None]) -> str:
    """Replace (or drop, for an empty list) each named user's block; keep the others."""
    blocks: dict[str, list[str]] = {}
    order: list[str] = []
    current: str | None = None
    for line in existing.splitlines():
        match = _BLOCK_RE.match(line)
        if match:
            current = match.group(1)
            if current not in blocks:
                order.append(current)
            blocks[current] = []
        elif current is not None and line.strip():
            blocks[current].append(line)
    for name, user_rules in rules.items():
        if user_rules is None:
            continue
        if name not in blocks:
            order.append(name)
        blocks[name] = [f"{name} {rule}" for rule in user_rules]
    out = [_SUDO_HEADER]
    for name in order:
        if blocks[name]:
            out.append(f"\n# User rules for {name}\n" + "".join(r + "\n" for r in blocks[name]))
    return "".join(out)


def _write_sudoers(run: _Run) -> None:
    if not run.sudo:
        return
    target = run.ctx.target
    existing = target.read_text(SUDOERS_DROPIN, default="")
    text = render_sudoers(existing, run.sudo)
    if text != existing:
        target.write(SUDOERS_DROPIN, text, mode=0o440, owner=(0, 0))
    main = target.real_path("/etc/sudoers")
    if not main.exists():
        run.ctx.log.warning(
            "no /etc/sudoers in the target; %s takes effect once sudo is installed", SUDOERS_DROPIN
        )
        return
    content = main.read_text(encoding="utf-8")
    if not re.search(r"^[#@]includedir\s+/etc/sudoers\.d\s*$", content, re.MULTILINE):
        mode = main.stat().st_mode & 0o7777
        sep = "" if content.endswith("\n") or not content else "\n"
        target.write("/etc/sudoers", content + sep + "@includedir /etc/sudoers.d\n", mode=mode)


def handle(ctx: ModuleContext) -> None:
    run = _Run(ctx, AccountsDB.load(ctx.target))
    plan = plan_users(ctx.cfg)
    run.problems.extend(plan.problems)
    groups, problems = parse_groups(ctx.cfg.get("groups"))
    run.problems.extend(problems)
    for where, name, _members in groups:
        try:
            _ensure_group(run, name, True, where)
        except AccountError as exc:
            run.problems.append(f"{where}: {exc}")
    for spec in plan.users:
        try:
            _apply_user(run, spec)
        except (AccountError, ValueError, TypeError) as exc:
            run.problems.append(f"{spec.where} ({spec.name}): {exc}")
    # Members are added after the users so a group may name a user made in this run.
    for where, name, members in groups:
        for member in members:
            if run.db.user(member) is None:
                run.problems.append(f"{where}: member {member!r} of {name!r} is not a user")
            elif run.db.group(name) is not None:
                run.db.add_member(name, member)
    for home, uid, gid in run.new_homes:
        try:
            _make_home(run, home, uid, gid)
        except (OSError, ValueError) as exc:
            run.problems.append(f"home {home}: {exc}")
    written = run.db.save()
    if written:
        ctx.log.info("updated %s", ", ".join(written))
    for name, keys in run.keys:
        user = run.db.user(name)
        if user is not None and keys:
            try:
                write_authorized_keys(ctx.target, user.home, user.uid, user.gid, keys)
            except (OSError, ValueError) as exc:
                run.problems.append(f"user {name}: authorized keys not written: {exc}")
    _write_sudoers(run)
    if run.problems:
        raise UsersGroupsError("; ".join(run.problems))


MODULE = ModuleSpec(
    name="users_groups",
    stage=Stage.INIT,
    order=60,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
