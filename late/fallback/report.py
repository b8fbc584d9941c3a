"""``bootseed fallback status`` (and the fallback line of ``bootseed status``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bootseed.late.fallback import grubcfg, grubenv, links
from bootseed.late.fallback.config import (
    GRUB_CFG_PATH,
    GRUBENV_PATH,
    TRIES_VAR,
    FallbackConfigError,
    Mode,
    read_config,
)
from bootseed.late.fallback.health import read_record
from bootseed.late.fallback.origin import BootOrigin, boot_origin
from bootseed.late.target import TargetRoot

# ``bootseed fallback status`` exit codes.
EXIT_HEALTHY = 0
EXIT_BROKEN = 1
EXIT_ON_FALLBACK = 2


@dataclass
class FallbackStatus:
    installed: bool
    boot: BootOrigin
    mode: str | None = None
    mode_reason: str = ""
    tries: int | None = None
    counter: str | None = None
    dist_kernel: list[links.FileCheck] = field(default_factory=list)
    grub_cfg: str = ""
    last_mark: dict[str, object] | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.installed and not self.problems and not self.boot.from_fallback

    @property
    def exit_code(self) -> int:
        if not self.installed or self.problems:
            return EXIT_BROKEN
        return EXIT_ON_FALLBACK if self.boot.from_fallback else EXIT_HEALTHY

    def to_json(self) -> dict[str, object]:
        return {
            "installed": self.installed, "healthy": self.healthy, "mode": self.mode,
            "mode_reason": self.mode_reason or None, "tries": self.tries,
            "counter": self.counter, "boot": self.boot.to_json(),
            "dist_kernel": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                            for c in self.dist_kernel],
            "grub_cfg": self.grub_cfg, "last_mark": self.last_mark,
            "problems": self.problems, "notes": self.notes,
        }

    def text(self) -> str:
        verdict = ("not installed" if not self.installed else
                   "healthy" if self.healthy else
                   "booted from fallback" if not self.problems else "broken")
        lines = [f"fallback: {verdict}"]
        if self.boot.from_fallback:
            lines.append(f"this boot: FALLBACK entry ({self.boot.reason}): "
                         f"{self.boot.explanation}")
        elif self.installed:
            lines.append("this boot: default entry")
        if self.mode:
            lines.append(f"mode: {self.mode} ({self.mode_reason})")
        if self.mode == Mode.COUNTER:
            lines.append(f"boot counter: {self.counter if self.counter is not None else 'unset'}"
                         f" of {self.tries} tries left")
        for check in self.dist_kernel:
            lines.append(f"dist-kernel {check.name}: {'ok' if check.ok else 'BAD'}: "
                         f"{check.detail}")
        if self.grub_cfg:
            lines.append(f"grub.cfg: {self.grub_cfg}")
        if self.last_mark:
            lines.append(f"last mark: {self.last_mark.get('note')}")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)


def fallback_status(target: TargetRoot, proc: Path | None = Path("/proc"),
                    run_dir: Path | None = None, verify_hash: bool = True) -> FallbackStatus:
    """``proc`` of the system that booted ``target``; ``None`` for a target not running."""
    origin = boot_origin(proc) if proc is not None else BootOrigin(False)
    try:
        config = read_config(target)
    except FallbackConfigError as exc:
        return FallbackStatus(installed=False, boot=origin, problems=[str(exc)])
    if config is None:
        return FallbackStatus(installed=False, boot=origin,
                              problems=["not installed (run 'bootseed fallback install')"])
    status = FallbackStatus(installed=True, boot=origin, mode=str(config.mode),
                            mode_reason=config.mode_reason, tries=config.tries)
    status.dist_kernel = links.check_dist_kernel(target, verify_hash=verify_hash)
    status.problems += [f"dist-kernel {c.name}: {c.detail}" for c in status.dist_kernel
                        if not c.ok]
    _check_grub_cfg(target, config.panic, status)
    if config.mode is Mode.COUNTER:
        env_path = target.path(GRUBENV_PATH)
        try:
            status.counter = grubenv.read(env_path).get(TRIES_VAR)
        except grubenv.GrubenvError as exc:
            status.problems.append(f"{exc}: GRUB cannot count boots")
        if not env_path.is_file():
            status.problems.append(f"no {GRUBENV_PATH}: GRUB cannot count boots (run "
                                   "'bootseed fallback refresh')")
        if status.counter == "0":
            status.notes.append("the counter is used up: the next boot uses the fallback "
                                "entry ('bootseed fallback refresh' re-arms it)")
    else:
        status.notes.append("no boot counting: GRUB's fallback variable only catches a "
                            "default entry GRUB cannot load")
    status.last_mark = read_record(run_dir or target.path("/run/bootseed"))
    return status


def _check_grub_cfg(target: TargetRoot, panic: int, status: FallbackStatus) -> None:
    try:
        text = target.path(GRUB_CFG_PATH).read_text(encoding="utf-8")
    except FileNotFoundError:
        status.problems.append(f"no {GRUB_CFG_PATH}")
        return
    if not grubcfg.has_entry(text):
        status.problems.append(f"{GRUB_CFG_PATH} has no fallback entry (run 'bootseed "
                               "fallback refresh' or update-grub)")
        return
    missing = grubcfg.linux_lines_without_panic(text)
    if missing:
        status.problems.append(f"{len(missing)} kernel line(s) in {GRUB_CFG_PATH} without "
                               "panic=: a panicking kernel would hang instead of rebooting")
    status.grub_cfg = "fallback entry present" + ("" if missing else ", panic= on every "
                                                  "kernel line")


def boot_summary(target: TargetRoot, proc: Path | None = Path("/proc")) -> dict[str, object]:
    """For ``bootseed status``: did this boot come from the fallback entry, and why."""
    origin = boot_origin(proc) if proc is not None else BootOrigin(False)
    try:
        installed = read_config(target) is not None
    except FallbackConfigError:
        installed = True
    doc = origin.to_json()
    doc["installed"] = installed
    return doc
