"""``keys_to_console``: host key fingerprints and public keys on the console only.

The block markers let a cloud's console-output API (or a person) pick the keys
out to fill known_hosts before the first login. Nothing goes to the log file:
the console is the trusted out-of-band channel here.
"""

from __future__ import annotations

from typing import Any

from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.sshkeys import SSH_DIR, SSHKeyError, fingerprint

FP_BEGIN = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
FP_END = "-----END SSH HOST KEY FINGERPRINTS-----"
KEYS_BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
KEYS_END = "-----END SSH HOST KEY KEYS-----"

_LIST = {"type": "array", "items": {"type": "string"}}
# ``no_ssh_fingerprints`` is read here too, but its schema is owned by
# ssh_authkey_fingerprints: one owner per top-level key.
SCHEMA: dict[str, Any] = {
    "properties": {
        "ssh_fp_console_blacklist": _LIST,
        "ssh_key_console_blacklist": _LIST,
        "ssh": {
            "type": "object",
            "properties": {"emit_keys_to_console": {"type": "boolean"}},
        },
    }
}


def _blocked(keytype: str, blacklist: Any) -> bool:
    """A blacklist names key types as in the .pub file (``ssh-ed25519``) or short (``ed25519``)."""
    if not isinstance(blacklist, list):
        return False
    names = {str(b).strip().lower() for b in blacklist}
    short = keytype.lower().removeprefix("ssh-").split("-sha2-")[0]
    return keytype.lower() in names or short in names


def host_public_keys(ctx: ModuleContext) -> list[str]:
    """The target's host public key lines, in file-name order (as a shell glob lists them)."""
    ssh_dir = ctx.target.real_path(SSH_DIR)
    if not ssh_dir.is_dir():
        return []
    lines = []
    for path in sorted(ssh_dir.glob("ssh_host_*key.pub")):
        text = path.read_text(encoding="utf-8").strip()
        if text:
            lines.append(text.splitlines()[0])
    return lines


def render(ctx: ModuleContext) -> list[str]:
    cfg = ctx.cfg
    fp_lines: list[str] = []
    key_lines: list[str] = []
    for line in host_public_keys(ctx):
        try:
            fp = fingerprint(line)
        except SSHKeyError as exc:
            ctx.log.warning("skipping unreadable host public key: %s", exc)
            continue
        if not _blocked(fp.keytype, cfg.get("ssh_fp_console_blacklist")):
            fp_lines.append(fp.line())
        if not _blocked(fp.keytype, cfg.get("ssh_key_console_blacklist")):
            key_lines.append(line)
    out = [FP_BEGIN, *fp_lines, FP_END]
    ssh_cfg = cfg.get("ssh")
    emit_keys = not isinstance(ssh_cfg, dict) or ssh_cfg.get("emit_keys_to_console", True)
    if emit_keys:
        out += [KEYS_BEGIN, *key_lines, KEYS_END]
    return out


def handle(ctx: ModuleContext) -> None:
    if ctx.cfg.get("no_ssh_fingerprints", False):
        ctx.log.info("no_ssh_fingerprints is set; not printing host keys")
        return
    lines = render(ctx)
    ctx.console("\n".join(lines))
    ctx.log.info("printed %d host key fingerprints to the console", len(lines))


MODULE = ModuleSpec(
    name="keys_to_console",
    stage=Stage.FINAL,
    order=80,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
