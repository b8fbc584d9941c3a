"""Build step: ``bootseed fallback install`` on the image tree.

The image's own kernel and initramfs are kept in ``/boot/dist-kernel``, the
fallback block and ``panic=`` go into the grub.cfg the builder wrote, the
boot counter is armed, and the kernel hooks and the mark-good unit are in
place, exactly as ``bootseed fallback install --root TREE`` would do it.
"""

from __future__ import annotations

from pathlib import Path

from bootseed.late.fallback.config import Mode
from bootseed.late.fallback.install import InstallOptions, install
from bootseed.late.target import TargetRoot


class FallbackStepError(Exception):
    """The fallback could not be installed into the image tree."""


def install_fallback(tree: Path, root_label: str, kernel_args: str) -> str:
    """Install into ``tree`` (grub.cfg must be there); a one-line note for the build log."""
    opts = InstallOptions(
        cmdline=f"root=LABEL={root_label} ro {kernel_args}".strip(),
        # The image's /boot is on its plain ext4 root: GRUB can write grubenv there.
        mode=Mode.COUNTER,
        mode_reason="image build: /boot/grub on the root ext4 filesystem",
        mountinfo=Path("/nonexistent"),
        run_update_grub=False,
    )
    outcome = install(TargetRoot(tree), opts)
    if outcome.warnings:
        raise FallbackStepError("; ".join(outcome.warnings))
    version = outcome.dist.version if outcome.dist else "?"
    return f"kernel {version} kept in /boot/dist-kernel"
