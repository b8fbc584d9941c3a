"""Print the initramfs size without and with bootseed's hook, in the boot-lab image.

Copies the lab's cached base tree and runs ``mkinitramfs`` in it as Debian ships it,
then installs bootseed's Debian packages as ``bootseed-image build`` does (their trigger
rebuilds the initramfs with the hook and the packaged settings). Prints both compressed
sizes and the difference (target: at most 5 MiB added), the share of the initramfs SSH
server (a third build with ``BOOTSEED_SSHD=no``), and with ``--list`` what the hook
added by size. Run as root:

    .venv/bin/python bench/initramfs_size.py [--json] [--list N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bootseed.image_builder import debinstall, rootfs
from bootseed.image_builder.aptchroot import apt_chroot
from bootseed.image_builder.basetree import BaseTree, BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.procrun import CommandFailed

SOURCE = Path(__file__).resolve().parent.parent
BUDGET = 5 * 1024 * 1024


def prepare_tree(work: Path) -> tuple[Path, BaseTree]:
    base = ensure_base_tree(BaseTreeSpec(), cache_root())
    tree = work / "root"
    rootfs.copy_base(base.root, tree)
    return tree, base


def install_packages(tree: Path, kernel: str) -> Path:
    """bootseed's .deb files installed; the initramfs their trigger rebuilt."""
    debinstall.install_debs(tree, debinstall.ensure_debs(SOURCE, cache_root()), kernel)
    return tree / f"boot/initrd.img-{kernel}"


def mkinitramfs(tree: Path, kernel: str, out: str) -> Path:
    subprocess.run(["chroot", str(tree), "mkinitramfs", "-o", out, kernel], check=True,
                   capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return tree / out.lstrip("/")


def without_sshd(tree: Path, kernel: str) -> Path:
    """The packaged initramfs again, with the SSH server left out (``BOOTSEED_SSHD=no``)."""
    conf = tree / "etc/initramfs-tools/conf.d/bootseed"
    original = conf.read_text()
    conf.write_text(original + "\nBOOTSEED_SSHD=no\n")
    try:
        return mkinitramfs(tree, kernel, "/tmp/initrd-no-sshd.img")
    finally:
        conf.write_text(original)


def unpacked_sizes(tree: Path, image: str) -> dict[str, int]:
    """Every regular file of an initramfs with its size (unpacked with unmkinitramfs)."""
    out = tree / "tmp/unpacked"
    if out.exists():
        shutil.rmtree(out)
    subprocess.run(["chroot", str(tree), "unmkinitramfs", image, "/tmp/unpacked"], check=True,
                   capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    sizes = {str(p.relative_to(out)): p.stat().st_size
             for p in out.rglob("*") if p.is_file() and not p.is_symlink()}
    shutil.rmtree(out)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--list", type=int, default=0, metavar="N",
                        help="also list the N largest files the hook added")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="work in DIR and keep it (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bootseed-initramfs-size-"))
    try:
        tree, base = prepare_tree(work)
        kernel = base.kernel_version
        with apt_chroot(tree):
            without = mkinitramfs(tree, kernel, "/tmp/initrd-without.img")
        with_hook = install_packages(tree, kernel)
        with apt_chroot(tree):
            no_sshd = without_sshd(tree, kernel).stat().st_size
        added: list[tuple[str, int]] = []
        if args.list:
            with apt_chroot(tree):
                before = unpacked_sizes(tree, "/tmp/initrd-without.img")
                after = unpacked_sizes(tree, f"/boot/initrd.img-{kernel}")
                added = sorted(((name, size) for name, size in after.items()
                                if name not in before), key=lambda item: -item[1])
        a, b = without.stat().st_size, with_hook.stat().st_size
        figures = {"kernel": kernel, "without_bytes": a, "with_bytes": b,
                   "added_bytes": b - a, "budget_bytes": BUDGET,
                   "sshd_bytes": b - no_sshd,
                   "within_budget": b - a <= BUDGET,
                   "added_files": len(added),
                   "largest_added": [{"path": n, "bytes": s} for n, s in added[:args.list]]}
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            print(f"kernel {kernel}")
            print(f"initramfs without hook: {a / 1048576:8.2f} MiB ({a} bytes)")
            print(f"initramfs with hook:    {b / 1048576:8.2f} MiB ({b} bytes)")
            print(f"added by bootseed:      {(b - a) / 1048576:8.2f} MiB "
                  f"({'within' if b - a <= BUDGET else 'OVER'} the 5 MiB budget)")
            print(f"of which the SSH server: {(b - no_sshd) / 1048576:7.2f} MiB "
                  "(dropbear, dropbearkey, e2fsck, blkid and their libraries)")
            if added:
                print(f"{len(added)} files added; largest (unpacked):")
                for name, size in added[:args.list]:
                    print(f"  {size / 1024:9.1f} KiB  {name}")
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
