"""``ssh``: host keys and certificates, authorized keys for the default user and root.

On a new instance the image's old host keys are removed (``ssh_deletekeys``) and
fresh ones made, ed25519 first, unless ``ssh_keys`` supplies them. A marker in the
instance dir lists the keys made for this instance, so a re-run after a crash
keeps them instead of rotating them again. Private key material is registered as
a secret and never logged. When the target is the running system and its sshd is
active, sshd is reloaded after its keys or its drop-in changed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Level, Problem
from bootseed.late import linegrammar, services, sshd
from bootseed.late.accounts import AccountsDB
from bootseed.late.authkeys import AuthorizedKey, parse_keys, write_authorized_keys
from bootseed.late.hostnames import HostnameError, choose
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.sshkeys import (
    HOST_KEY_TYPES,
    SLOW_KEY_TYPES,
    SSH_DIR,
    SSHKeyError,
    certificate_path,
    fingerprint,
    generate_host_keys,
    private_path,
    public_from_private,
    public_path,
)
from bootseed.late.target import TargetPathError
from bootseed.late.usercfg import default_user_name

DROPIN = f"{sshd.DROPIN_DIR}/50-bootseed.conf"
MARKER = "ssh-host-keys.json"
DEFAULT_DISABLE_ROOT_OPTS = (
    "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,"
    'command="echo \'Please login as the user \\"$USER\\" rather than the user '
    '\\"$DISABLE_USER\\".\';echo;sleep 10;exit 142"'
)

_KEY_PARTS = ("private", "public", "certificate")
_KEY_NAMES = [f"{t}_{part}" for t in HOST_KEY_TYPES for part in _KEY_PARTS]
# cloud-init accepts DSA host keys; OpenSSH 9.2 (Debian bookworm) no longer loads them.
_DSA_NAMES = [f"dsa_{part}" for part in _KEY_PARTS]
SCHEMA: dict[str, Any] = {
    "properties": {
        "ssh_authorized_keys": {"type": "array", "items": {"type": "string"}},
        "allow_public_ssh_keys": {"type": "boolean"},
        "disable_root": {"type": "boolean"},
        "disable_root_opts": {"type": "string"},
        "ssh_deletekeys": {"type": "boolean"},
        "ssh_genkeytypes": {"type": "array", "items": {"type": "string"}},
        "ssh_keys": {
            "type": "object",
            "propertyNames": {"enum": _KEY_NAMES + _DSA_NAMES},
            "additionalProperties": {"type": "string"},
        },
        "ssh_quiet_keygen": {"type": "boolean"},
    }
}


class SSHModuleError(RuntimeError):
    """Some SSH settings could not be applied; the message names each."""


@dataclass
class _Run:
    ctx: ModuleContext
    problems: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    # Host keys or the drop-in changed: a running sshd must reload to use them.
    sshd_changed: bool = False


def _key_comment(ctx: ModuleContext) -> str:
    try:
        return f"root@{choose(ctx.cfg, ctx.instance).hostname}"
    except HostnameError:
        return "root@localhost"


def _existing_host_key_files(ctx: ModuleContext) -> list[str]:
    try:
        with ctx.target.open_dir(SSH_DIR) as fd:
            names = os.listdir(fd)
    except (FileNotFoundError, TargetPathError):
        return []
    return sorted(n for n in names if n.startswith("ssh_host_") and "key" in n)


def _marker_still_valid(ctx: ModuleContext) -> bool:
    """True when this instance already made its keys and they are all still in place."""
    try:
        made = json.loads((ctx.instance_dir / MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    if not isinstance(made, dict) or not made:
        return False
    for keytype, sha in made.items():
        try:
            pub = ctx.target.read_text(public_path(keytype))
            if (
                fingerprint(pub).sha256 != sha
                or not ctx.target.exists(private_path(keytype))
            ):
                return False
        except (FileNotFoundError, SSHKeyError):
            return False
    return True


def _delete_host_keys(run: _Run) -> None:
    ctx = run.ctx
    for name in _existing_host_key_files(ctx):
        ctx.target.unlink(f"{SSH_DIR}/{name}")
        ctx.log.info("removed old host key file %s/%s", SSH_DIR, name)
        run.sshd_changed = True


def _write_pair(ctx: ModuleContext, keytype: str, private: bytes | None, public: str) -> None:
    if private is not None:
        ctx.target.write(private_path(keytype), private, mode=0o600, owner=(0, 0))
    ctx.target.write(public_path(keytype), public + "\n", mode=0o644, owner=(0, 0))


def _apply_given_keys(run: _Run, keys: Any) -> dict[str, str]:
    ctx = run.ctx
    if not isinstance(keys, dict):
        run.problems.append("ssh_keys: expected a mapping such as {ed25519_private: ...}")
        return {}
    written: dict[str, str] = {}
    dsa = [name for name in _DSA_NAMES if name in keys]
    if dsa:
        if "dsa_private" in keys:
            ctx.add_secret(str(keys["dsa_private"]))
        ctx.problems.append(Problem(
            ", ".join(f"ssh_keys.{name}" for name in dsa),
            "DSA host keys are not supported by this OpenSSH; skipped", Level.NOTE))
    for name in keys:
        if name not in _KEY_NAMES and name not in _DSA_NAMES:
            run.problems.append(
                f"ssh_keys.{name}: unknown key name (one of {', '.join(_KEY_NAMES)}; "
                f"{', '.join(_DSA_NAMES)} are accepted and skipped)"
            )
    for keytype in HOST_KEY_TYPES:
        private = keys.get(f"{keytype}_private")
        public = keys.get(f"{keytype}_public")
        cert = keys.get(f"{keytype}_certificate")
        where = f"ssh_keys.{keytype}"
        try:
            if private is not None:
                ctx.add_secret(str(private))
                derived = public_from_private(str(private), _key_comment(ctx))
                if public is not None:
                    given = fingerprint(str(public)).sha256
                    if given != fingerprint(derived).sha256:
                        raise SSHKeyError(f"{keytype}_public does not match {keytype}_private")
                text = str(private) if str(private).endswith("\n") else f"{private}\n"
                _write_pair(ctx, keytype, text.encode("utf-8"), str(public or derived).strip())
                written[keytype] = fingerprint(derived).sha256
                run.sshd_changed = True
            elif public is not None:
                _write_pair(ctx, keytype, None, str(public).strip())
                run.sshd_changed = True
            if cert is not None:
                ctx.target.write(certificate_path(keytype), str(cert).strip() + "\n", mode=0o644)
                run.certificates.append(certificate_path(keytype))
                run.sshd_changed = True
        except SSHKeyError as exc:
            run.problems.append(f"{where}: {exc}")
    return written


def _record_made(ctx: ModuleContext, made: dict[str, str], *, replace: bool) -> None:
    """The marker of the keys this instance made: replaced by a fresh generation, merged
    into when more keys are added to the ones kept."""
    recorded: dict[str, str] = {}
    if not replace:
        try:
            loaded = json.loads((ctx.instance_dir / MARKER).read_text(encoding="utf-8"))
            recorded = loaded if isinstance(loaded, dict) else {}
        except (FileNotFoundError, ValueError):
            recorded = {}
    recorded.update(made)
    ctx.instance_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(ctx.instance_dir / MARKER, json.dumps(recorded, sort_keys=True) + "\n", 0o644)


def _make_keys(ctx: ModuleContext, types: list[str], comment: str,
               problems: list[str]) -> dict[str, str]:
    made: dict[str, str] = {}
    for outcome in generate_host_keys(types, comment):
        if isinstance(outcome, SSHKeyError):
            problems.append(f"ssh_genkeytypes: {outcome}")
            continue
        key = outcome
        ctx.add_secret(key.private_pem.decode("ascii"))
        _write_pair(ctx, key.keytype, key.private_pem, key.public_line)
        fp = fingerprint(key.public_line)
        made[key.keytype] = fp.sha256
        ctx.log.info("generated %s host key %s", key.keytype, fp.sha256)
    return made


def _slow_keys_beside(ctx: ModuleContext, types: list[str], comment: str) -> list[Problem]:
    """The slow host keys, made while the boot goes on: sshd has started with the others
    (it advertises only the keys it loaded) and is restarted once these are written."""
    problems: list[str] = []
    made = _make_keys(ctx, types, comment, problems)
    found = [Problem("ssh_genkeytypes", text.removeprefix("ssh_genkeytypes: "))
             for text in problems]
    if made:
        _record_made(ctx, made, replace=False)
        # Sessions survive the restart: Debian's unit kills only the listener.
        restart = services.try_restart(ctx.target, sshd.SERVICE, "ssh")
        if restart is not None:
            found.append(restart)
    return found


def _generate_keys(run: _Run, types: Any) -> dict[str, str]:
    """Make the wanted host keys that are missing; the marker entries of those made here.

    RSA (seconds under an emulated CPU) is made beside the boot when the runner allows
    it and a quicker key lets sshd start meanwhile."""
    ctx = run.ctx
    if not isinstance(types, list):
        run.problems.append("ssh_genkeytypes: expected a list of key types")
        return {}
    # A type listed twice is made once, as when each was made after the one before.
    wanted = [t for t in dict.fromkeys(str(t) for t in types)
              if not ctx.target.exists(private_path(t))]
    slow = [t for t in wanted if t in SLOW_KEY_TYPES]
    quick = [t for t in wanted if t not in SLOW_KEY_TYPES]
    # sshd must have a key to start with: one made now or one already in place.
    startable = any(t in HOST_KEY_TYPES for t in quick) or any(
        ctx.target.exists(private_path(t)) for t in HOST_KEY_TYPES)
    if not slow or not startable or ctx.background is None:
        quick, slow = wanted, []
    made = _make_keys(ctx, quick, _key_comment(ctx), run.problems)
    if made:
        run.sshd_changed = True
    if slow:
        comment = _key_comment(ctx)
        ctx.run_beside(f"{', '.join(slow)} host key",
                       lambda: _slow_keys_beside(ctx, slow, comment))
    return made


def _host_keys(run: _Run) -> None:
    ctx, cfg = run.ctx, run.ctx.cfg
    if _marker_still_valid(ctx):
        ctx.log.info("host keys for this instance are already in place")
        if "ssh_keys" in cfg:
            # Re-write certificates (and any given keys) so the drop-in stays complete.
            _apply_given_keys(run, cfg["ssh_keys"])
        else:
            # A run stopped before a key made beside the boot was written: make it now.
            made = _generate_keys(run, cfg.get("ssh_genkeytypes", list(HOST_KEY_TYPES)))
            if made:
                _record_made(ctx, made, replace=False)
        return
    if cfg.get("ssh_deletekeys", True):
        _delete_host_keys(run)
    if "ssh_keys" in cfg:
        made = _apply_given_keys(run, cfg["ssh_keys"])
    else:
        made = _generate_keys(run, cfg.get("ssh_genkeytypes", list(HOST_KEY_TYPES)))
    if made:
        _record_made(ctx, made, replace=True)


def _sshd_dropin(run: _Run) -> None:
    """``HostCertificate`` lines for the given certificates (``ssh_pwauth`` has its own
    drop-in, written by ``set_passwords``)."""
    ctx = run.ctx
    lines = [f"HostCertificate {path}" for path in run.certificates]
    if not lines:
        if sshd.remove_dropin(ctx.target, DROPIN):
            run.sshd_changed = True
        return
    text = "# Written by bootseed from cloud-config (ssh_keys certificates).\n"
    text += "".join(line + "\n" for line in lines)
    if sshd.write_dropin(ctx.target, DROPIN, text):
        run.sshd_changed = True
    missing = sshd.dropin_not_included(ctx.target, DROPIN, "ssh_keys")
    if missing is not None:
        ctx.problems.append(missing)


def _authorized_keys(run: _Run) -> None:
    ctx, cfg = run.ctx, run.ctx.cfg
    keys: list[AuthorizedKey] = []
    if cfg.get("allow_public_ssh_keys", True) is not False:
        parsed, problems = parse_keys(list(ctx.instance.public_keys), "meta-data public-keys")
        keys += parsed
        run.problems += problems
    elif ctx.instance.public_keys:
        ctx.log.info("allow_public_ssh_keys is false: %d meta-data public key(s) not added",
                     len(ctx.instance.public_keys))
    configured = cfg.get("ssh_authorized_keys") or []
    if isinstance(configured, str):
        configured = [configured]
    parsed, problems = parse_keys(list(configured), "ssh_authorized_keys")
    keys += parsed
    run.problems += problems
    if not keys:
        return
    db = AccountsDB.load(ctx.target)
    user = default_user_name(cfg)
    if user:
        entry = db.user(user)
        if entry is None:
            run.problems.append(
                f"default user {user!r} does not exist in the target; its keys were not written"
            )
        else:
            try:
                write_authorized_keys(ctx.target, entry.home, entry.uid, entry.gid, keys)
            except (ValueError, OSError) as exc:
                run.problems.append(f"default user {user!r}: keys not written: {exc}")
    disable_root = bool(cfg.get("disable_root", True)) and user != "root"
    options = ""
    if disable_root:
        template = str(cfg.get("disable_root_opts", DEFAULT_DISABLE_ROOT_OPTS))
        options = template.replace("$USER", user or "NONE").replace("$DISABLE_USER", "root")
    root = db.user("root")
    if root is None:
        run.problems.append("no root account in the target; root's keys were not written")
        return
    try:
        linegrammar.authorized_key_part(options, "disable_root_opts")
        write_authorized_keys(
            ctx.target, root.home, root.uid, root.gid, [k.with_options(options) for k in keys]
        )
    except (ValueError, OSError) as exc:
        run.problems.append(f"root's keys not written: {exc}")


def handle(ctx: ModuleContext) -> None:
    run = _Run(ctx)
    _host_keys(run)
    _sshd_dropin(run)
    _authorized_keys(run)
    if run.sshd_changed:
        reload_problem = sshd.reload_if_running(ctx.target, "ssh")
        if reload_problem is not None:
            ctx.problems.append(reload_problem)
    if run.problems:
        raise SSHModuleError("; ".join(run.problems))


MODULE = ModuleSpec(
    name="ssh",
    stage=Stage.INIT,
    order=70,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
