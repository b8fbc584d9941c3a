"""Which GRUB entry this boot came from, and why, from the kernel command line.

The fallback entry adds ``bootseed.fallback=<reason>``; the default entry adds
nothing. Reading the command line (not grubenv) works in both modes and even
when GRUB could not write its environment block.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bootseed.contract.cmdline import parse as parse_cmdline

REASONS = {
    "tries-exhausted": "the default entry used up its boot tries without a boot reaching "
                       "bootseed's final stage",
    "default-not-loaded": "GRUB could not load the default entry (or the fallback entry was "
                          "chosen in the GRUB menu)",
}


@dataclass(frozen=True)
class BootOrigin:
    from_fallback: bool
    reason: str = ""  # the code GRUB passed; empty on a default boot
    explanation: str = ""

    def to_json(self) -> dict[str, object]:
        return {"from_fallback": self.from_fallback, "reason": self.reason or None,
                "explanation": self.explanation or None}


def origin_from_cmdline(cmdline: str) -> BootOrigin:
    value = parse_cmdline(cmdline).fallback
    if value is None:
        return BootOrigin(False)
    text = REASONS.get(value, f"GRUB booted the fallback entry (reason {value!r})"
                       if value else "the fallback entry was booted (no reason given)")
    return BootOrigin(True, value, text)


def boot_origin(proc: Path = Path("/proc")) -> BootOrigin:
    try:
        cmdline = (proc / "cmdline").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return BootOrigin(False)
    return origin_from_cmdline(cmdline)
