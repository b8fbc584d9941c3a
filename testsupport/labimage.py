"""The boot lab's image: the product image plus the tools the boot tests look at.

The product image stays lean (``basetree.DEFAULT_PACKAGES``). The lab image
adds what the boot tests need inside the guest to prove a module's effect
with the real program (chrony for ``ntp``, rsyslog for ``rsyslog``, nftables
for the metadata lock-down, mdadm for RAID, curl for HTTPS checks; dropbear,
for the initramfs SSH server, is in the product image). One list, so every boot test and every
helper build shares one cached base tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bootseed.image_builder.basetree import DEFAULT_PACKAGES, BaseTreeSpec
from bootseed.image_builder.build import BuildOptions

LAB_EXTRA_PACKAGES: tuple[str, ...] = (
    "chrony",
    "rsyslog",
    "nftables",
    "locales",
    "curl",
    "ca-certificates",
    "mdadm",
    "xfsprogs",
    "fdisk",
    "dosfstools",
)

LAB_BASE = BaseTreeSpec(packages=DEFAULT_PACKAGES + LAB_EXTRA_PACKAGES)


def lab_build_options(out_dir: Path, *, extra_debs: tuple[Path, ...] = (),
                      **overrides: Any) -> BuildOptions:
    """Build options for a lab image in ``out_dir`` on the shared lab base tree."""
    return BuildOptions(out_dir=out_dir, checksums=False, base=LAB_BASE,
                        extra_debs=extra_debs, **overrides)
