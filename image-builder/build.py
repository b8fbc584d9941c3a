"""``bootseed-image build``: base tree -> image tree -> partitioned disk with GRUB.

Use from Python::

    from bootseed.image_builder.build import BuildOptions, build_image
    manifest = build_image(BuildOptions(out_dir=Path("out")))
    manifest.file("raw").path   # the bootable disk

Steps (each timed and reported by :class:`~bootseed.image_builder.progress.Progress`):
base tree (cached by package list), bootseed's Debian packages (cached by a
hash of the source), image tree, ``apt-get install`` of the packages (whose
trigger rebuilds the initramfs with the early stage; with ``initramfs="dracut"`` the
base tree has dracut instead of initramfs-tools, see :mod:`initramfsgen`), GRUB files, partition
table, root filesystem, GRUB boot code, optional qcow2, checksums. With the base
tree and packages cached a rebuild takes well under a minute, most of it the
initramfs, ``mkfs.ext4 -d`` and the checksum.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, TextIO

from bootseed.image_builder import (
    cloudinit_image,
    debinstall,
    disk,
    fallback,
    initramfsgen,
    ova,
    rootfs,
)
from bootseed.image_builder.manifest import FORMATS, ImageManifest
from bootseed.image_builder.pipeline import (
    AGENTS,
    ROOT_LABEL,
    BuildError,
    BuildOptions,
    ImageJob,
    file_entry,
)
from bootseed.image_builder.progress import Progress

# The options and the error come from the pipeline; callers may take them from here.
__all__ = ["BuildError", "BuildOptions", "build_image"]


def build_image(options: BuildOptions, stream: TextIO | None = None,
                quiet: bool = False) -> ImageManifest:
    """Build the image(s) into ``options.out_dir`` and return the manifest."""
    if options.agent != "bootseed":
        if options.agent not in AGENTS:
            raise BuildError(f"unknown agent {options.agent!r} (choose from "
                             f"{', '.join(AGENTS)})")
        return cloudinit_image.build_cloud_init_image(options, stream=stream, quiet=quiet)
    try:
        generator = initramfsgen.generator(options.initramfs)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    for fmt in options.formats:
        if fmt not in FORMATS:
            raise BuildError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    extra_steps = ("qcow2" in options.formats) + bool({"vmdk", "ova"} & set(options.formats))
    progress = Progress(total=9 + extra_steps, stream=stream, quiet=quiet)
    job = ImageJob.start(options, progress)
    tree, raw = job.tree, job.raw
    with job.logged_steps() as log:
        base = job.base_tree(log)
        with progress.step("bootseed packages (scripts/build-deb, cached by source)") as step:
            debs = debinstall.ensure_debs(options.source, job.cache, log=log)
            step.note = f"{'cached' if debs.reused else 'built'} {', '.join(debs.names)}"
        job.image_tree(base, log)
        try:
            rootfs.install_initramfs_ssh_keys(tree, options.initramfs_ssh_keys)
        except ValueError as exc:
            raise BuildError(str(exc)) from None
        with progress.step("apt-get install bootseed (initramfs rebuilt)") as step:
            packages = debinstall.PACKAGES if options.initramfs_part else ("bootseed",)
            versions = debinstall.install_debs(tree, debs, base.kernel_version, log=log,
                                               extra=options.extra_debs, packages=packages,
                                               generator=generator)
            step.note = ", ".join(f"{name} {version}" for name, version in versions.items())
            rootfs.install_lab_files(tree, log=log)
        with progress.step("GRUB files, fallback kernel entry") as step:
            rootfs.install_grub_files(tree, ROOT_LABEL, options.kernel_args,
                                      firmware=options.firmware)
            step.note = fallback.install_fallback(tree, ROOT_LABEL, options.kernel_args)
        facts = job.assemble_disk(log)
        files_to_hash = [(raw, "raw")]
        if "qcow2" in options.formats:
            qcow = job.out / f"{options.name}.qcow2"
            with progress.step("qcow2 image"):
                disk.convert_to_qcow2(raw, qcow, log=log)
            files_to_hash.append((qcow, "qcow2"))
        if {"vmdk", "ova"} & set(options.formats):
            with progress.step("VMDK (streamOptimized) and OVA") as step:
                made = _vmdk_and_ova(job, options, log)
                step.note = ", ".join(path.name for path, _ in made)
            files_to_hash.extend(made)
        with progress.step("Checksums"):
            files = [file_entry(p, f, options.checksums) for p, f in files_to_hash
                     if f in options.formats]
    job.remove_work()
    for path, fmt in files_to_hash:
        if fmt not in options.formats:  # the raw the others came from, the OVA's disk
            path.unlink()
    return job.finish(files, base, facts, packages=base.packages, bootseed_debs=debs.names,
                      initramfs_hook=options.initramfs_part, initramfs=generator.name)


def _vmdk_and_ova(job: ImageJob, options: BuildOptions, log: IO[str]) -> list[tuple[Path, str]]:
    """The streamOptimized VMDK, and the OVA wrapping it when asked for."""
    vmdk = job.out / f"{options.name}.vmdk"
    ova.convert_to_vmdk(job.raw, vmdk, log=log)
    made = [(vmdk, "vmdk")]
    if "ova" in options.formats:
        path = job.out / f"{options.name}.ova"
        appliance = ova.Appliance(name=options.name, firmware=options.firmware)
        ova.write_ova(path, appliance, vmdk, job.layout.total_bytes)
        made.append((path, "ova"))
    return made
