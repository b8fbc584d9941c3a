"""The program that makes an image's initramfs: Debian's initramfs-tools or dracut.

Debian bookworm's kernel depends on ``initramfs-tools | linux-initramfs-tool`` and
``dracut`` (which provides ``linux-initramfs-tool``) conflicts with initramfs-tools, so
the generator is chosen in the base tree's package list (:func:`base_packages`, a base
tree of its own, cached by that list). bootseed-initramfs carries the early stage for
both: an initramfs-tools hook and boot script, and the dracut module ``50bootseed`` with
``/etc/dracut.conf.d/bootseed.conf``.

Both rebuild the initramfs on the same dpkg trigger, ``update-initramfs``: the package
activates it, and initramfs-tools (``update-initramfs -u``) or dracut (its postinst runs
``/etc/kernel/postinst.d/dracut`` for every kernel) is interested. Each
:class:`InitramfsGenerator` knows how to list the initramfs and which path in that
listing proves the early stage is in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootseed.image_builder.aptchroot import APT_ENV
from bootseed.image_builder.procrun import run


@dataclass(frozen=True)
class InitramfsGenerator:
    name: str
    # The Debian package that provides it; the other generators' packages leave the base.
    package: str
    # argv prefixes, completed with the initramfs path (and the kernel version to rebuild).
    list_argv: tuple[str, ...]
    # A path in the listing that only bootseed-initramfs puts there: the early stage.
    early_marker: str
    # klibc's DHCP client: the early stage's fallback on initramfs-tools; never in a
    # dracut initramfs (dracut ships no klibc).
    ipconfig_marker: str = "usr/bin/ipconfig"


INITRAMFS_TOOLS = InitramfsGenerator(
    name="initramfs-tools", package="initramfs-tools",
    list_argv=("lsinitramfs",), early_marker="scripts/init-premount/bootseed")
# lsinitrd prints "ls -l"-like lines, so the marker is matched against each line's path
# (see listing()).
DRACUT = InitramfsGenerator(
    name="dracut", package="dracut",
    list_argv=("lsinitrd",), early_marker="usr/lib/dracut/hooks/pre-mount/50-bootseed-premount.sh")

GENERATORS: dict[str, InitramfsGenerator] = {g.name: g for g in (INITRAMFS_TOOLS, DRACUT)}
DEFAULT_GENERATOR = INITRAMFS_TOOLS.name


def generator(name: str) -> InitramfsGenerator:
    try:
        return GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown initramfs generator {name!r} (choose from "
                         f"{', '.join(GENERATORS)})") from None


def base_packages(packages: tuple[str, ...], name: str) -> tuple[str, ...]:
    """``packages`` with the chosen generator's package in place of the others'."""
    chosen = generator(name)
    others = {g.package for g in GENERATORS.values()} - {chosen.package}
    kept = tuple(p for p in packages if p not in others)
    return kept if chosen.package in kept else (*kept, chosen.package)


def listing(tree_chroot: str, gen: InitramfsGenerator, kernel_version: str) -> list[str]:
    """The paths in the tree's initramfs, relative, one per entry."""
    out = run(["chroot", tree_chroot, *gen.list_argv, f"/boot/initrd.img-{kernel_version}"],
              env=APT_ENV, timeout=300)
    return out.splitlines() if gen is INITRAMFS_TOOLS else lsinitrd_paths(out)


def lsinitrd_paths(out: str) -> list[str]:
    """The paths in ``lsinitrd`` output: after a header, "ls -l"-like lines whose 9th
    field is the path (followed by " -> target" for a symlink)."""
    paths = []
    for line in out.splitlines():
        fields = line.split(None, 8)
        if len(fields) == 9 and fields[0][:1] in "-dlcbps" and len(fields[0]) == 10:
            paths.append(fields[8].split(" -> ", 1)[0])
    return paths
