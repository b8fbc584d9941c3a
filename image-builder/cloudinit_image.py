"""``bootseed-image build --agent cloud-init``: the same image with Debian's cloud-init.

For benchmarks side by side (``bench/boot_vs_cloudinit.py``): the base tree,
kernel, first-boot hygiene, GRUB files and disk layout are the ones
:func:`bootseed.image_builder.build.build_image` makes, but instead of
bootseed (its .deb packages, fallback kernel entry) the
tree gets Debian's ``cloud-init`` package, installed with apt in a chroot
(``--no-install-recommends``, so the package list differs from the bootseed
image only by cloud-init and what it depends on). The initramfs is the
distribution's, untouched.

cloud-init is set up for the lab, not tuned:

* ``datasource_list: [NoCloud, None]`` - the lab hands the seed as a NoCloud
  URL on the kernel command line (``ds=nocloud;s=...``); without the list
  cloud-init would also try the EC2 metadata address in vain;
* ``network: {config: disabled}`` - the image's systemd-networkd files do
  DHCP (as in the bootseed image, which writes network configuration only
  when the seed has some), so both images bring the network up the same way;
* ``locale: C.UTF-8`` - the base has no ``locales`` package, so cloud-init's
  default (generate en_US.UTF-8) fails there.

A NoCloud URL seed must be on the kernel command line as
``ds=nocloud-net;s=URL`` for cloud-init 22.4 (``ds=nocloud`` means "local
seed only"): ``BootOptions(nocloud_cmdline=NOCLOUD_CMDLINE)``.

The lab report script and its unit are installed as in the bootseed image;
the script sees no ``bootseed`` command and waits for cloud-init instead.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from bootseed.image_builder import disk, grub, rootfs
from bootseed.image_builder.aptchroot import APT_ENV, apt_chroot
from bootseed.image_builder.basetree import ensure_base_tree, installed_packages
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.manifest import ImageFile, ImageManifest, write_manifest
from bootseed.image_builder.procrun import run
from bootseed.image_builder.progress import Progress

if TYPE_CHECKING:
    from bootseed.image_builder.build import BuildOptions

AGENTS = ("bootseed", "cloud-init")
NOCLOUD_CMDLINE = "ds=nocloud-net;s={url}"
CLOUD_INIT_PACKAGE = "cloud-init"

LAB_CLOUD_CFG = """\
# Boot lab image (bootseed-image build --agent cloud-init): the seed comes
# as a NoCloud URL on the kernel command line; there is no other cloud.
datasource_list: [NoCloud, None]
# The image's systemd-networkd files bring up DHCP, as in the bootseed image.
network: {config: disabled}
# The image has no "locales" package (as the bootseed image): the default
# en_US.UTF-8 cannot be generated and the locale module would fail.
locale: C.UTF-8
"""


def install_cloud_init(tree: Path, log: IO[str] | None = None) -> str:
    """apt-get install cloud-init in the tree; return its installed version."""
    with apt_chroot(tree, resolv=True):
        run(["chroot", str(tree), "apt-get", "update", "-q"], log=log, timeout=900,
            env=APT_ENV)
        run(["chroot", str(tree), "apt-get", "install", "-y", "-q", "--no-install-recommends",
             CLOUD_INIT_PACKAGE], log=log, timeout=1800, env=APT_ENV)
        run(["chroot", str(tree), "apt-get", "clean"], log=log, env=APT_ENV)
    cfg = tree / "etc/cloud/cloud.cfg.d/90-bootseed-lab.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(LAB_CLOUD_CFG)
    # The package's own first-boot state must not be in the image.
    shutil.rmtree(tree / "var/lib/cloud", ignore_errors=True)
    (tree / "var/lib/cloud").mkdir(parents=True)
    return installed_packages(tree).get(CLOUD_INIT_PACKAGE, "?")


def build_cloud_init_image(options: BuildOptions, stream: TextIO | None = None,
                           quiet: bool = False) -> ImageManifest:
    """What ``build_image`` does for ``agent="cloud-init"``."""
    from bootseed.image_builder.build import ROOT_LABEL, BuildError

    if tuple(options.formats) != ("raw",):
        raise BuildError("--agent cloud-init builds raw images only")
    started = time.monotonic()
    cache = cache_root(options.cache)
    out = options.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / f".{options.name}.work"
    tree = work / "root"
    raw = out / f"{options.name}.raw"
    log_path = out / f"{options.name}.build.log"
    layout = disk.DiskLayout(root_bytes=options.root_size)
    progress = Progress(total=7, stream=stream, quiet=quiet)
    with open(log_path, "w") as log:
        try:
            with progress.step("Base tree (mmdebstrap, cached by package list)") as step:
                base = ensure_base_tree(options.base, cache, log=log)
                step.note = f"{'cached' if base.reused else 'built'} {base.key}"
            with progress.step("Image tree (copy of the base)"):
                rootfs.copy_base(base.root, tree, log=log)
                rootfs.configure_system(tree, ROOT_LABEL, options.hostname, log=log)
            with progress.step("Install cloud-init (Debian package) and the lab report") as step:
                step.note = "cloud-init " + install_cloud_init(tree, log=log)
                rootfs.install_lab_files(tree, log=log)
                packages = installed_packages(tree)
            with progress.step("GRUB files"):
                rootfs.install_grub_files(tree, ROOT_LABEL, options.kernel_args)
            with progress.step("Partition table (GPT, BIOS boot + root)"):
                disk.write_partition_table(raw, layout, log=log)
            with progress.step(f"Root filesystem (ext4, {layout.root_bytes // disk.GIB} GiB)"):
                disk.make_root_filesystem(raw, layout, tree, ROOT_LABEL, log=log)
            with progress.step("GRUB boot code (MBR + BIOS boot partition)"):
                core = grub.make_core_image(work / "core.img", ROOT_LABEL, log=log)
                grub.install_bios_grub(raw, core, layout.bios_start, layout.bios_sectors)
                grubenv_offset = disk.file_disk_offset(raw, layout.root_offset,
                                                       "/boot/grub/grubenv")
                fs_uuid = disk.fs_uuid(raw, layout.root_offset)
        except Exception as exc:
            failed = progress.records[-1].name if progress.records else "setup"
            raise BuildError(f"{failed}: {exc} (full log: {log_path})") from exc
    shutil.rmtree(work, ignore_errors=True)
    entry = ImageFile(path=str(raw), format="raw", size=raw.stat().st_size,
                      allocated=disk.allocated_bytes(raw),
                      sha256=disk.sha256_file(raw) if options.checksums else "")
    manifest = ImageManifest(
        name=options.name,
        files=[entry],
        root_label=ROOT_LABEL,
        root_fs_uuid=fs_uuid,
        root_size=layout.root_bytes,
        root_offset=layout.root_offset,
        grubenv_offset=grubenv_offset,
        kernel_version=base.kernel_version,
        kernel_args=options.kernel_args,
        base_key=base.key,
        base_reused=base.reused,
        bootseed_debs=[],
        initramfs_hook=False,
        packages=packages,
        steps=[asdict(r) for r in progress.records],
        seconds=round(time.monotonic() - started, 1),
    )
    write_manifest(manifest, raw)
    return manifest
