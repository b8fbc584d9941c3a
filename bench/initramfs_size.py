"""Print the initramfs size without and with bootseed's early stage, for both generators.

initramfs-tools: copies the product's cached base tree and runs ``mkinitramfs`` in it as
Debian ships it, then installs bootseed's Debian packages as ``bootseed-image build``
does (their trigger rebuilds the initramfs with the hook and the packaged settings).
More builds with the settings overridden measure the parts: pyroute2 in
(``BOOTSEED_WITH="blkid pyroute2"``, the default network path: "with"), pyroute2 out
(``BOOTSEED_WITH="blkid"``, the klibc fallback) and the SSH server out
(``BOOTSEED_SSHD=no``). dracut: the same on the base tree with dracut instead of
initramfs-tools (``bootseed-image build --initramfs dracut``): dracut's initramfs as
Debian makes it, then the one the packages' trigger rebuilt with bootseed's module, and
whether any klibc ``ipconfig`` is in it. The target is at most 5 MiB added (compressed).
With ``--list N``: the N largest files the hook added, and what pyroute2 brings in
(its own modules, the standard library it pulls in) unpacked. Run as root:

    .venv/bin/python bench/initramfs_size.py [--json] [--list N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import posixpath
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bootseed.image_builder import debinstall, initramfsgen, rootfs
from bootseed.image_builder.aptchroot import apt_chroot
from bootseed.image_builder.basetree import BaseTree, BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.procrun import CommandFailed

SOURCE = Path(__file__).resolve().parent.parent
BUDGET = 5 * 1024 * 1024
MIB = 1048576
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
CONF = "etc/initramfs-tools/conf.d/bootseed"


def prepare_tree(work: Path, generator: str) -> tuple[Path, BaseTree]:
    spec = BaseTreeSpec()
    spec = dataclasses.replace(spec, packages=initramfsgen.base_packages(spec.packages,
                                                                         generator))
    base = ensure_base_tree(spec, cache_root())
    tree = work / generator / "root"
    rootfs.copy_base(base.root, tree)
    return tree, base


def install_packages(tree: Path, kernel: str, generator: str) -> Path:
    """bootseed's .deb files installed; the initramfs their trigger rebuilt."""
    debinstall.install_debs(tree, debinstall.ensure_debs(SOURCE, cache_root()), kernel,
                            generator=initramfsgen.generator(generator))
    return tree / f"boot/initrd.img-{kernel}"


def mkinitramfs(tree: Path, kernel: str, out: str) -> Path:
    subprocess.run(["chroot", str(tree), "mkinitramfs", "-o", out, kernel], check=True,
                   capture_output=True, env=ENV)
    return tree / out.lstrip("/")


def dracut(tree: Path, kernel: str, out: str) -> Path:
    subprocess.run(["chroot", str(tree), "dracut", "--force", "--kver", kernel, out],
                   check=True, capture_output=True, env=ENV)
    return tree / out.lstrip("/")


def packaged_setting(tree: Path, name: str) -> str:
    for line in (tree / CONF).read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip('"')
    return ""


def with_settings(tree: Path, kernel: str, out: str, settings: str) -> Path:
    """The packaged initramfs again, with ``settings`` appended to the hook's conf."""
    conf = tree / CONF
    original = conf.read_text()
    conf.write_text(original + "\n" + settings + "\n")
    try:
        return mkinitramfs(tree, kernel, out)
    finally:
        conf.write_text(original)


def unpacked_sizes(tree: Path, image: str) -> dict[str, int]:
    """Every regular file of an initramfs-tools initramfs with its size (unmkinitramfs)."""
    out = tree / "tmp/unpacked"
    if out.exists():
        shutil.rmtree(out)
    subprocess.run(["chroot", str(tree), "unmkinitramfs", image, "/tmp/unpacked"], check=True,
                   capture_output=True, env=ENV)
    sizes = {str(p.relative_to(out)): p.stat().st_size
             for p in out.rglob("*") if p.is_file() and not p.is_symlink()}
    shutil.rmtree(out)
    return sizes


def added_files(before: dict[str, int], after: dict[str, int]) -> list[tuple[str, int]]:
    # unmkinitramfs puts the main archive under main/ when there is an early one.
    def strip(name: str) -> str:
        return name.removeprefix("main/")

    seen = {strip(name) for name in before}
    return sorted(((strip(n), s) for n, s in after.items() if strip(n) not in seen),
                  key=lambda item: -item[1])


def pyroute2_parts(added: list[tuple[str, int]]) -> dict[str, int]:
    """What pyroute2 brought in, unpacked: its package, and the standard library it pulls."""
    own = sum(s for n, s in added if "/pyroute2/" in f"/{n}")
    return {"pyroute2_package_bytes": own,
            "stdlib_pulled_bytes": sum(s for _, s in added) - own,
            "files": len(added)}


def measure_initramfs_tools(work: Path, listing: int) -> dict[str, Any]:
    tree, base = prepare_tree(work, "initramfs-tools")
    kernel = base.kernel_version
    with apt_chroot(tree):
        without = mkinitramfs(tree, kernel, "/tmp/initrd-without.img").stat().st_size
    packaged = install_packages(tree, kernel, "initramfs-tools").stat().st_size
    with apt_chroot(tree):
        pyroute2 = with_settings(tree, kernel, "/tmp/initrd-pyroute2.img",
                                 'BOOTSEED_WITH="blkid pyroute2"').stat().st_size
        klibc = with_settings(tree, kernel, "/tmp/initrd-klibc.img",
                              'BOOTSEED_WITH="blkid"').stat().st_size
        no_sshd = with_settings(tree, kernel, "/tmp/initrd-no-sshd.img",
                                'BOOTSEED_WITH="blkid pyroute2"\nBOOTSEED_SSHD=no'
                                ).stat().st_size
        figures: dict[str, Any] = {}
        if listing:
            before = unpacked_sizes(tree, "/tmp/initrd-without.img")
            after = unpacked_sizes(tree, "/tmp/initrd-pyroute2.img")
            fallback = unpacked_sizes(tree, "/tmp/initrd-klibc.img")
            added = added_files(before, after)
            figures["added_files"] = len(added)
            figures["largest_added"] = [{"path": n, "bytes": s} for n, s in added[:listing]]
            figures["pyroute2_unpacked"] = pyroute2_parts(added_files(fallback, after))
    figures.update({
        "kernel": kernel, "without_bytes": without, "with_bytes": pyroute2,
        "added_bytes": pyroute2 - without, "budget_bytes": BUDGET,
        "within_budget": pyroute2 - without <= BUDGET,
        "packaged_with": packaged_setting(tree, "BOOTSEED_WITH"),
        "packaged_bytes": packaged, "klibc_fallback_bytes": klibc,
        "pyroute2_bytes": pyroute2 - klibc, "sshd_bytes": pyroute2 - no_sshd,
    })
    return figures


def measure_dracut(work: Path) -> dict[str, Any]:
    tree, base = prepare_tree(work, "dracut")
    kernel = base.kernel_version
    with apt_chroot(tree):
        without = dracut(tree, kernel, "/tmp/initrd-without.img").stat().st_size
    with_hook = install_packages(tree, kernel, "dracut").stat().st_size
    paths = initramfsgen.listing(str(tree), initramfsgen.DRACUT, kernel)
    return {"kernel": kernel, "without_bytes": without, "with_bytes": with_hook,
            "added_bytes": with_hook - without,
            "within_budget": with_hook - without <= BUDGET,
            "pyroute2": any("/pyroute2/" in p for p in paths),
            "ipconfig": sorted(p for p in paths if posixpath.basename(p) == "ipconfig"
                               or "klibc" in p)}


def print_figures(tools: dict[str, Any], drac: dict[str, Any]) -> None:
    def mib(value: int) -> str:
        return f"{value / MIB:6.2f} MiB"

    print(f"kernel {tools['kernel']}")
    print("initramfs-tools (zstd):")
    print(f"  without bootseed:             {mib(tools['without_bytes'])}")
    print(f"  with it, pyroute2 (default):  {mib(tools['with_bytes'])}")
    print(f"  added:                        {mib(tools['added_bytes'])} "
          f"({'within' if tools['within_budget'] else 'OVER'} the 5 MiB budget)")
    print(f"  of which pyroute2:            {mib(tools['pyroute2_bytes'])} (against the klibc "
          f"fallback, BOOTSEED_WITH=\"blkid\": {mib(tools['klibc_fallback_bytes'])})")
    print(f"  of which the SSH server:      {mib(tools['sshd_bytes'])} "
          "(dropbear, dropbearkey, e2fsck, blkid and their libraries)")
    print(f"  as packaged (BOOTSEED_WITH=\"{tools['packaged_with']}\"): "
          f"{mib(tools['packaged_bytes'])}")
    parts = tools.get("pyroute2_unpacked")
    if parts:
        print(f"  pyroute2 unpacked: {parts['files']} files, its package "
              f"{parts['pyroute2_package_bytes'] / 1024:.0f} KiB, standard library it pulls "
              f"in {parts['stdlib_pulled_bytes'] / 1024:.0f} KiB")
    print("dracut (gzip, Debian's default):")
    print(f"  without bootseed:             {mib(drac['without_bytes'])}")
    print(f"  with it (pyroute2):           {mib(drac['with_bytes'])}")
    print(f"  added:                        {mib(drac['added_bytes'])} "
          f"({'within' if drac['within_budget'] else 'OVER'} the 5 MiB budget)")
    print(f"  pyroute2 in it: {'yes' if drac['pyroute2'] else 'NO'}; klibc ipconfig in it: "
          f"{', '.join(drac['ipconfig']) or 'none'}")
    if tools.get("largest_added"):
        print(f"{tools['added_files']} files added to the initramfs-tools one; largest "
              "(unpacked):")
        for item in tools["largest_added"]:
            print(f"  {item['bytes'] / 1024:9.1f} KiB  {item['path']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--list", type=int, default=0, metavar="N",
                        help="also list the N largest files the hook added, and what "
                        "pyroute2 brings in")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="work in DIR and keep it (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bootseed-initramfs-size-"))
    try:
        tools = measure_initramfs_tools(work, args.list)
        drac = measure_dracut(work)
        if args.json:
            # The initramfs-tools figures at the top level (run_all.py reads them there).
            print(json.dumps({**tools, "dracut": drac}, indent=2))
        else:
            print_figures(tools, drac)
    except (debinstall.DebInstallError, CommandFailed) as exc:
        print(f"initramfs_size: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        print(f"initramfs_size: {' '.join(map(str, exc.cmd))} failed: {' | '.join(detail)}",
              file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
