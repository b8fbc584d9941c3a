"""Shell scripts bootseed installs for GRUB and the kernel packages (package data)."""

from __future__ import annotations

from importlib import resources

GRUB_D_SCRIPT = "42_bootseed_fallback"
KERNEL_HOOK = "zz-bootseed-fallback"
MARK_UNIT = "bootseed-fallback-mark.service"


def script_text(name: str) -> str:
    """The text of one of the shipped scripts."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
