"""``bootseed-image build --agent cloud-init``: the same image with Debian's cloud-init.

For benchmarks side by side (``bench/boot_vs_cloudinit.py``): the base tree,
kernel, first-boot hygiene, GRUB files and disk layout are the ones
:func:`bootseed.image_builder.build.build_image` makes (both run
:mod:`bootseed.image_builder.pipeline`), but instead of
bootseed (its .deb packages, fallback kernel entry) the
tree gets Debian's ``cloud-init`` package. It is part of the base tree's
package list (:func:`cloud_init_base`), so mmdebstrap installs it once
(without recommends, as for every base package) and the cache keeps that
tree: the package list differs from the bootseed image only by cloud-init and
what it depends on, and a rebuild needs no network. The initramfs is the
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
from dataclasses import replace
from pathlib import Path
from typing import IO, TextIO

from bootseed.image_builder import initramfsgen, rootfs
from bootseed.image_builder.aptchroot import APT_ENV, apt_chroot
from bootseed.image_builder.basetree import BaseTreeSpec, installed_packages
from bootseed.image_builder.manifest import ImageManifest
from bootseed.image_builder.pipeline import (
    ROOT_LABEL,
    BuildError,
    BuildOptions,
    ImageJob,
    file_entry,
)
from bootseed.image_builder.procrun import run
from bootseed.image_builder.progress import Progress

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


def cloud_init_base(spec: BaseTreeSpec) -> BaseTreeSpec:
    """``spec`` with cloud-init in its package list (a base tree of its own, cached)."""
    if CLOUD_INIT_PACKAGE in spec.packages:
        return spec
    return replace(spec, packages=(*spec.packages, CLOUD_INIT_PACKAGE))


def install_cloud_init(tree: Path, log: IO[str] | None = None) -> str:
    """Set cloud-init up for the lab in the tree, installing it with apt when the base
    tree did not bring it; return its installed version."""
    if CLOUD_INIT_PACKAGE not in installed_packages(tree):
        _apt_install_cloud_init(tree, log)
    cfg = tree / "etc/cloud/cloud.cfg.d/90-bootseed-lab.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(LAB_CLOUD_CFG)
    # The package's own first-boot state must not be in the image.
    shutil.rmtree(tree / "var/lib/cloud", ignore_errors=True)
    (tree / "var/lib/cloud").mkdir(parents=True)
    return installed_packages(tree).get(CLOUD_INIT_PACKAGE, "?")


def _apt_install_cloud_init(tree: Path, log: IO[str] | None) -> None:
    with apt_chroot(tree, resolv=True):
        run(["chroot", str(tree), "apt-get", "update", "-q"], log=log, timeout=900,
            env=APT_ENV)
        run(["chroot", str(tree), "apt-get", "install", "-y", "-q", "--no-install-recommends",
             CLOUD_INIT_PACKAGE], log=log, timeout=1800, env=APT_ENV)
        run(["chroot", str(tree), "apt-get", "clean"], log=log, env=APT_ENV)


def build_cloud_init_image(options: BuildOptions, stream: TextIO | None = None,
                           quiet: bool = False) -> ImageManifest:
    """What ``build_image`` does for ``agent="cloud-init"``."""
    if tuple(options.formats) != ("raw",):
        raise BuildError("--agent cloud-init builds raw images only")
    if options.initramfs != initramfsgen.DEFAULT_GENERATOR:
        # Debian's cloud-init has no initramfs part: the generator would change nothing
        # a benchmark compares, and this image kind is not tested with another.
        raise BuildError("--agent cloud-init builds with initramfs-tools only")
    progress = Progress(total=7, stream=stream, quiet=quiet)
    job = ImageJob.start(replace(options, base=cloud_init_base(options.base)), progress)
    with job.logged_steps() as log:
        base = job.base_tree(log)
        job.image_tree(base, log)
        with progress.step("Install cloud-init (Debian package) and the lab report") as step:
            step.note = "cloud-init " + install_cloud_init(job.tree, log=log)
            rootfs.install_lab_files(job.tree, log=log)
            packages = installed_packages(job.tree)
        with progress.step("GRUB files"):
            rootfs.install_grub_files(job.tree, ROOT_LABEL, options.kernel_args,
                                      firmware=options.firmware)
        facts = job.assemble_disk(log)
    job.remove_work()
    entry = file_entry(job.raw, "raw", options.checksums)
    return job.finish([entry], base, facts, packages=packages, bootseed_debs=[],
                      initramfs_hook=False, initramfs=options.initramfs)
