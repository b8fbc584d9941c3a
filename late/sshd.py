"""The target's sshd: its drop-in directory and, on the host, a reload after a change.

Debian's ``/etc/ssh/sshd_config`` (bookworm, OpenSSH 9.2) starts with ``Include
/etc/ssh/sshd_config.d/*.conf``, and sshd keeps the first value it reads for a
keyword, so a drop-in there overrides the main file. Modules write their own
drop-in files and never edit the main file.
"""

from __future__ import annotations

from bootseed.contract.problems import Level, Problem
from bootseed.late.execute import TargetExecError, run_captured
from bootseed.late.target import TargetRoot

MAIN_CONFIG = "/etc/ssh/sshd_config"
DROPIN_DIR = "/etc/ssh/sshd_config.d"
SERVICE = "ssh"
RELOAD_TIMEOUT = 60.0


def includes_dropins(target: TargetRoot) -> bool | None:
    """Whether the main config includes ``sshd_config.d``; ``None`` without a main config."""
    text = target.read_text(MAIN_CONFIG, default="")
    if not text:
        return None
    for line in text.splitlines():
        words = line.split()
        if words and words[0].lower() == "include" and any(
            DROPIN_DIR in word or word.startswith("sshd_config.d/") for word in words[1:]
        ):
            return True
    return False


def dropin_not_included(target: TargetRoot, dropin: str, where: str) -> Problem | None:
    """A warning when sshd would never read ``dropin`` because the main file lacks the
    ``Include``; nothing when it does or when the target has no sshd config at all."""
    if includes_dropins(target) is False:
        return Problem(where, f"{MAIN_CONFIG} does not include {DROPIN_DIR}/*.conf; "
                       f"{dropin} has no effect until it does", Level.WARNING)
    return None


def write_dropin(target: TargetRoot, path: str, text: str) -> bool:
    """Write one drop-in; ``True`` when its content changed."""
    if target.exists(path) and target.read_text(path, default="") == text:
        return False
    target.write(path, text, mode=0o644, owner=(0, 0))
    return True


def remove_dropin(target: TargetRoot, path: str) -> bool:
    """Remove one of our drop-ins; ``True`` when there was one."""
    if not target.exists(path):
        return False
    target.unlink(path)
    return True


def reload_if_running(target: TargetRoot, where: str) -> Problem | None:
    """Reload sshd when the target is the running system and sshd is active there.

    In a ``--root`` target nothing runs: sshd reads the new files when it starts."""
    if not target.is_host:
        return None
    try:
        active = run_captured(target, ["systemctl", "is-active", "--quiet", SERVICE],
                              timeout=RELOAD_TIMEOUT)
        if active.returncode != 0:
            return None
        reload = run_captured(target, ["systemctl", "reload", SERVICE], timeout=RELOAD_TIMEOUT)
    except TargetExecError as exc:
        return Problem(where, f"sshd not reloaded: {exc}", Level.WARNING)
    if reload.returncode != 0:
        tail = reload.output.strip().splitlines()[-1:] or ["no output"]
        return Problem(where, f"systemctl reload {SERVICE} exited with status "
                       f"{reload.returncode}: {tail[0]}", Level.WARNING)
    return None

