"""``/etc/bootseed/fallback.conf``: what the GRUB script and the late agent agree on.

Shell syntax (``NAME='value'`` lines) because the ``/etc/grub.d`` script sources
it; written only by :func:`write_config`, read back here without a shell.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import StrEnum

from bootseed.late.target import TargetRoot

CONFIG_PATH = "/etc/bootseed/fallback.conf"
DIST_DIR = "/boot/dist-kernel"
GRUBENV_PATH = "/boot/grub/grubenv"
GRUB_CFG_PATH = "/boot/grub/grub.cfg"
ENTRY_ID = "bootseed-fallback"
TRIES_VAR = "bootseed_tries"
# The most boot attempts of the default entry; the GRUB script spells out each count.
MAX_TRIES = 9
DEFAULT_TRIES = 2
DEFAULT_PANIC = 10


class Mode(StrEnum):
    # GRUB counts boots in grubenv and boots the fallback entry when they are used up.
    COUNTER = "counter"
    # grubenv cannot be written by GRUB (RAID, LVM, btrfs ...): only GRUB's own
    # ``fallback`` variable, which catches an entry GRUB cannot load, not a kernel
    # that panics or an initramfs that cannot mount root.
    VARIABLE = "variable"


class FallbackConfigError(ValueError):
    """The configuration file is missing a value or holds a bad one."""


@dataclass(frozen=True)
class FallbackConfig:
    mode: Mode
    tries: int
    panic: int
    # The dist-kernel directory as GRUB sees it on its root device.
    grub_dir: str
    # A file unique to this install that GRUB searches for to find that device.
    marker: str
    cmdline: str
    title: str
    # Why the mode is what it is (shown by ``bootseed fallback status``).
    mode_reason: str = ""

    def validate(self) -> None:
        if not 1 <= self.tries <= MAX_TRIES:
            raise FallbackConfigError(f"tries must be 1..{MAX_TRIES}, got {self.tries}")
        if self.panic < 1:
            raise FallbackConfigError(f"panic must be at least 1 second, got {self.panic}")
        for name in ("grub_dir", "marker"):
            value = getattr(self, name)
            if not value.startswith("/") or any(c in value for c in " '\"\n$;\\"):
                raise FallbackConfigError(f"{name} must be an absolute path without spaces, "
                                          f"quotes or '$', got {value!r}")
        if any(c in text for text in (self.cmdline, self.title) for c in "\n'"):
            raise FallbackConfigError("cmdline and title must be one line without a single quote")


_KEYS = {
    "mode": "BOOTSEED_FALLBACK_MODE",
    "tries": "BOOTSEED_FALLBACK_TRIES",
    "panic": "BOOTSEED_FALLBACK_PANIC",
    "grub_dir": "BOOTSEED_FALLBACK_GRUB_DIR",
    "marker": "BOOTSEED_FALLBACK_MARKER",
    "cmdline": "BOOTSEED_FALLBACK_CMDLINE",
    "title": "BOOTSEED_FALLBACK_TITLE",
    "mode_reason": "BOOTSEED_FALLBACK_MODE_REASON",
}


def render_config(config: FallbackConfig) -> str:
    config.validate()
    lines = ["# Written by 'bootseed fallback install'; change it with that command.\n"]
    for attr, key in _KEYS.items():
        lines.append(f"{key}={shlex.quote(str(getattr(config, attr)))}\n")
    return "".join(lines)


def parse_config(text: str, where: str = CONFIG_PATH) -> FallbackConfig:
    raw: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        if not sep:
            raise FallbackConfigError(f"{where}:{number}: expected NAME=value")
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise FallbackConfigError(f"{where}:{number}: {exc}") from None
        raw[name] = " ".join(words)
    values: dict[str, str] = {}
    for attr, key in _KEYS.items():
        if key not in raw and attr != "mode_reason":
            raise FallbackConfigError(f"{where}: {key} is missing")
        values[attr] = raw.get(key, "")
    try:
        config = FallbackConfig(
            mode=Mode(values["mode"]),
            tries=int(values["tries"]),
            panic=int(values["panic"]),
            grub_dir=values["grub_dir"],
            marker=values["marker"],
            cmdline=values["cmdline"],
            title=values["title"],
            mode_reason=values["mode_reason"],
        )
    except ValueError as exc:
        raise FallbackConfigError(f"{where}: {exc}") from None
    config.validate()
    return config


def read_config(target: TargetRoot) -> FallbackConfig | None:
    """The installed configuration, or ``None`` when fallback is not installed."""
    path = target.path(CONFIG_PATH)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return parse_config(text, str(path))


def write_config(target: TargetRoot, config: FallbackConfig) -> None:
    target.write(CONFIG_PATH, render_config(config), mode=0o644)
