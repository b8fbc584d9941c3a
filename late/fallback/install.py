"""``bootseed fallback install`` and ``refresh``: put every piece in place, idempotently.

Install keeps the original kernel (once: an existing ``/boot/dist-kernel`` is
kept unless forced), writes the configuration, the grub.d script and the
kernel hook, puts the fallback block into grub.cfg and arms the boot counter.
Refresh does the same minus the kernel files, so it is safe from a kernel
package hook: it never touches ``/boot/dist-kernel``.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bootseed.contract.cmdline import format_param
from bootseed.contract.cmdline import parse as parse_cmdline
from bootseed.grub import GRUB_D_SCRIPT, KERNEL_HOOK, MARK_UNIT, script_text
from bootseed.late.fallback import grubcfg, grubenv, links
from bootseed.late.fallback.config import (
    DEFAULT_PANIC,
    DEFAULT_TRIES,
    DIST_DIR,
    GRUB_CFG_PATH,
    GRUBENV_PATH,
    TRIES_VAR,
    FallbackConfig,
    Mode,
    read_config,
    write_config,
)
from bootseed.late.fallback.envsupport import boot_is_separate, detect_mode
from bootseed.late.target import TargetRoot

HOOK_DIRS = ("/etc/kernel/postinst.d", "/etc/kernel/postrm.d")
UNIT_DIR = "/etc/systemd/system"
DEFAULT_TITLE = "Distribution kernel (bootseed fallback)"
# What of the running command line the fallback entry keeps by default.
_KEEP_WORDS = ("root", "rootfstype", "rootflags", "ro", "rw", "console", "net.ifnames")


class FallbackError(Exception):
    """Fallback could not be installed or refreshed; the message says why."""


@dataclass
class InstallOptions:
    tries: int = DEFAULT_TRIES
    panic: int = DEFAULT_PANIC
    cmdline: str | None = None
    title: str = DEFAULT_TITLE
    mode: Mode | None = None
    mode_reason: str = "chosen with --mode"
    kernel: str | None = None
    initrd: str | None = None
    force: bool = False
    proc: Path = Path("/proc")
    mountinfo: Path = Path("/proc/self/mountinfo")
    run_update_grub: bool = True


@dataclass
class Outcome:
    """What was done, and what the user should know (warnings do not fail the command)."""

    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dist: links.DistKernel | None = None
    config: FallbackConfig | None = None

    def to_json(self) -> dict[str, object]:
        return {"done": self.done, "warnings": self.warnings,
                "dist_kernel": self.dist.to_json() if self.dist else None,
                "mode": str(self.config.mode) if self.config else None}


def _root_from_fstab(target: TargetRoot) -> str | None:
    for line in target.read_text("/etc/fstab", default="").splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1] == "/":
            return fields[0]
    return None


def default_cmdline(target: TargetRoot, proc: Path) -> str:
    """root=/ro and console= of the running system (host), else root= from fstab."""
    words: list[str] = []
    if target.is_host:
        try:
            running = parse_cmdline((proc / "cmdline").read_text(encoding="utf-8")).params
        except OSError:
            running = ()
        words = [format_param(name, value) for name, value in running if name in _KEEP_WORDS]
    if not any(w.startswith("root=") for w in words):
        spec = _root_from_fstab(target)
        if spec is None:
            raise FallbackError("cannot tell the root device (no root= on the kernel command "
                                "line, no / in /etc/fstab): pass --cmdline")
        words.insert(0, f"root={spec}")
    if "ro" not in words and "rw" not in words:
        words.insert(1, "ro")
    return " ".join(words)


def _install_scripts(target: TargetRoot) -> None:
    target.write(grubcfg.GRUB_D_PATH, script_text(GRUB_D_SCRIPT), mode=0o755)
    for directory in HOOK_DIRS:
        target.write(f"{directory}/{KERNEL_HOOK}", script_text(KERNEL_HOOK), mode=0o755)
    # Enabled by hand (what systemctl enable does) so it works on an image tree too.
    target.write(f"{UNIT_DIR}/{MARK_UNIT}", script_text(MARK_UNIT))
    wants = target.path(f"{UNIT_DIR}/multi-user.target.wants")
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / MARK_UNIT
    if not link.is_symlink():
        link.symlink_to(f"{UNIT_DIR}/{MARK_UNIT}")


def _update_grub_cfg(target: TargetRoot, config: FallbackConfig, outcome: Outcome,
                     run_update_grub: bool) -> None:
    cfg_path = target.path(GRUB_CFG_PATH)
    try:
        current = cfg_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current is not None and grubcfg.made_by_mkconfig(current):
        target.write(grubcfg.DEFAULTS_DROPIN, grubcfg.defaults_dropin(config.panic))
        update = shutil.which("update-grub") if target.is_host else None
        if run_update_grub and update:
            done = subprocess.run([update], capture_output=True, text=True, timeout=300,
                                  check=False)
            if done.returncode != 0:
                raise FallbackError(f"update-grub failed: {done.stderr.strip()[-300:]}")
            outcome.done.append("grub.cfg regenerated by update-grub")
        else:
            outcome.warnings.append("grub.cfg is made by grub-mkconfig: run update-grub in "
                                    "the target to add the fallback entry")
        return
    if current is None:
        outcome.warnings.append(f"no {GRUB_CFG_PATH}: the fallback entry is in no boot menu "
                                "yet (run 'bootseed fallback refresh' once it exists)")
        return
    index = grubcfg.top_level_entries(grubcfg.strip_block(current))
    block = grubcfg.render_block(target, target.path(grubcfg.GRUB_D_PATH), index)
    new = grubcfg.splice(current, block, config.panic)
    if new != current:
        target.write(GRUB_CFG_PATH, new, mode=cfg_path.stat().st_mode & 0o7777)
        outcome.done.append(f"fallback entry and panic={config.panic} written into "
                            f"{GRUB_CFG_PATH}")
    else:
        outcome.done.append(f"{GRUB_CFG_PATH} already up to date")


def arm_counter(target: TargetRoot, config: FallbackConfig) -> str:
    """Give the default entry its tries again (counter mode); what was done."""
    if config.mode is not Mode.COUNTER:
        return f"no boot counter ({config.mode_reason})"
    grubenv.update(target.path(GRUBENV_PATH), {TRIES_VAR: str(config.tries)})
    return f"boot counter armed: {config.tries} tries"


def install(target: TargetRoot, opts: InstallOptions) -> Outcome:
    outcome = Outcome()
    try:
        existing = links.read_manifest(target)
    except links.DistKernelError:
        existing = None
    if existing is not None and not opts.force:
        dist = existing
        outcome.done.append(f"kept {DIST_DIR} (kernel {dist.version or '?'}, installed "
                            "earlier; --force replaces it)")
    else:
        try:
            if opts.kernel and opts.initrd:
                kernel, initrd = opts.kernel, opts.initrd
                name = Path(kernel).name
                version = name.partition("-")[2] if name.startswith("vmlinuz-") else ""
            else:
                kernel, initrd, version = links.find_default_kernel(target)
            dist = links.keep_dist_kernel(target, kernel, initrd, version,
                                          f"bootseed-{secrets.token_hex(6)}.id")
        except (links.DistKernelError, OSError) as exc:
            raise FallbackError(str(exc)) from None
        for kept in dist.files:
            outcome.done.append(f"{DIST_DIR}/{kept.name}: {kept.method} of {kept.source}")
            if kept.note:
                outcome.warnings.append(f"{DIST_DIR}/{kept.name}: {kept.note}")
    outcome.dist = dist
    if opts.mode is not None:
        mode, reason = opts.mode, opts.mode_reason
    else:
        mode, reason = detect_mode(target, opts.mountinfo)
    grub_dir = "/dist-kernel" if boot_is_separate(target, opts.mountinfo) else DIST_DIR
    config = FallbackConfig(
        mode=mode, tries=opts.tries, panic=opts.panic, grub_dir=grub_dir,
        marker=f"{grub_dir}/{dist.marker}",
        cmdline=opts.cmdline if opts.cmdline is not None else default_cmdline(target,
                                                                              opts.proc),
        title=opts.title, mode_reason=reason)
    try:
        write_config(target, config)
    except ValueError as exc:
        raise FallbackError(str(exc)) from None
    outcome.config = config
    if mode is Mode.VARIABLE:
        outcome.warnings.append(f"no boot counting: {reason}; only GRUB's fallback variable "
                                "(catches an entry GRUB cannot load, not a kernel panic)")
    _install_scripts(target)
    outcome.done.append("grub.d script, kernel hooks and the mark-good unit installed")
    _update_grub_cfg(target, config, outcome, opts.run_update_grub)
    outcome.done.append(arm_counter(target, config))
    return outcome


def refresh(target: TargetRoot, run_update_grub: bool = True) -> Outcome:
    """Scripts, grub.cfg block and counter again; ``/boot/dist-kernel`` is left as it is."""
    config = read_config(target)
    if config is None:
        raise FallbackError("fallback is not installed (run 'bootseed fallback install')")
    outcome = Outcome(config=config)
    _install_scripts(target)
    _update_grub_cfg(target, config, outcome, run_update_grub)
    for check in links.check_dist_kernel(target, verify_hash=False):
        if not check.ok:
            outcome.warnings.append(f"{DIST_DIR}: {check.detail}")
    for name in ("/vmlinuz", "/initrd.img"):
        host = target.path(name)
        if host.is_symlink() and not host.exists():
            outcome.warnings.append(f"{name} points at a missing file: the default entry "
                                    "will not boot")
    outcome.done.append(arm_counter(target, config))
    return outcome
