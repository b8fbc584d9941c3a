"""``bootseed-image build``: base tree -> image tree -> partitioned disk with GRUB.

Use from Python::

    from bootseed.image_builder.build import BuildOptions, build_image
    manifest = build_image(BuildOptions(out_dir=Path("out")))
    manifest.file("raw").path   # the bootable disk

Steps (each timed and reported by :class:`~bootseed.image_builder.progress.Progress`):
base tree (cached by package list), bootseed's Debian packages (cached by a
hash of the source), image tree, ``apt-get install`` of the packages (whose
trigger rebuilds the initramfs with the early stage), GRUB files, partition
table, root filesystem, GRUB boot code, optional qcow2, checksums. With the base
tree and packages cached a rebuild takes well under a minute, most of it the
initramfs, ``mkfs.ext4 -d`` and the checksum.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from bootseed.image_builder import debinstall, disk, fallback, grub, rootfs
from bootseed.image_builder.basetree import BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.manifest import ImageFile, ImageManifest, write_manifest
from bootseed.image_builder.progress import Progress

ROOT_LABEL = "bootseed-root"
DEFAULT_ROOT_SIZE = 10 * disk.GIB
# console=ttyS0 last: it becomes /dev/console, so the serial log has
# everything. The lab adds its arguments through the GRUB environment block.
DEFAULT_KERNEL_ARGS = "console=tty0 console=ttyS0,115200 net.ifnames=1"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("raw", "qcow2")


@dataclass
class BuildOptions:
    out_dir: Path
    name: str = "bootseed-bookworm-amd64"
    formats: tuple[str, ...] = ("raw",)
    root_size: int = DEFAULT_ROOT_SIZE
    cache: Path | None = None
    source: Path = SOURCE_ROOT
    base: BaseTreeSpec = field(default_factory=BaseTreeSpec)
    kernel_args: str = DEFAULT_KERNEL_ARGS
    hostname: str = rootfs.DEFAULT_HOSTNAME
    checksums: bool = True
    # "cloud-init": the same image with Debian's cloud-init instead of bootseed
    # (for benchmarks; see cloudinit_image.py).
    agent: str = "bootseed"
    # More local .debs installed beside bootseed (the boot lab's test package).
    extra_debs: tuple[Path, ...] = ()


class BuildError(Exception):
    """The build stopped; the message says at which step and why."""


def _file_entry(path: Path, fmt: str, checksum: bool) -> ImageFile:
    return ImageFile(
        path=str(path),
        format=fmt,
        size=path.stat().st_size,
        allocated=disk.allocated_bytes(path),
        sha256=disk.sha256_file(path) if checksum else "",
    )


def build_image(options: BuildOptions, stream: TextIO | None = None,
                quiet: bool = False) -> ImageManifest:
    """Build the image(s) into ``options.out_dir`` and return the manifest."""
    if options.agent != "bootseed":
        from bootseed.image_builder import cloudinit_image

        if options.agent not in cloudinit_image.AGENTS:
            raise BuildError(f"unknown agent {options.agent!r} (choose from "
                             f"{', '.join(cloudinit_image.AGENTS)})")
        return cloudinit_image.build_cloud_init_image(options, stream=stream, quiet=quiet)
    for fmt in options.formats:
        if fmt not in FORMATS:
            raise BuildError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    started = time.monotonic()
    cache = cache_root(options.cache)
    out = options.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / f".{options.name}.work"
    tree = work / "root"
    raw = out / f"{options.name}.raw"
    log_path = out / f"{options.name}.build.log"
    layout = disk.DiskLayout(root_bytes=options.root_size)
    progress = Progress(total=9 + ("qcow2" in options.formats), stream=stream, quiet=quiet)
    with open(log_path, "w") as log:
        try:
            with progress.step("Base tree (mmdebstrap, cached by package list)") as step:
                base = ensure_base_tree(options.base, cache, log=log)
                step.note = f"{'cached' if base.reused else 'built'} {base.key}"
            with progress.step("bootseed packages (scripts/build-deb, cached by source)") as step:
                debs = debinstall.ensure_debs(options.source, cache, log=log)
                step.note = f"{'cached' if debs.reused else 'built'} {', '.join(debs.names)}"
            with progress.step("Image tree (copy of the base)"):
                rootfs.copy_base(base.root, tree, log=log)
                rootfs.configure_system(tree, ROOT_LABEL, options.hostname, log=log)
            with progress.step("apt-get install bootseed (initramfs rebuilt)") as step:
                versions = debinstall.install_debs(tree, debs, base.kernel_version, log=log,
                                                   extra=options.extra_debs)
                step.note = ", ".join(f"{name} {version}" for name, version in versions.items())
                rootfs.install_lab_files(tree, log=log)
            with progress.step("GRUB files, fallback kernel entry") as step:
                rootfs.install_grub_files(tree, ROOT_LABEL, options.kernel_args)
                step.note = fallback.install_fallback(tree, ROOT_LABEL, options.kernel_args)
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
            files_to_hash = [(raw, "raw")]
            if "qcow2" in options.formats:
                qcow = out / f"{options.name}.qcow2"
                with progress.step("qcow2 image"):
                    disk.convert_to_qcow2(raw, qcow, log=log)
                files_to_hash.append((qcow, "qcow2"))
            with progress.step("Checksums"):
                files = [_file_entry(p, f, options.checksums) for p, f in files_to_hash]
        except Exception as exc:
            failed = progress.records[-1].name if progress.records else "setup"
            raise BuildError(f"{failed}: {exc} (full log: {log_path})") from exc
    shutil.rmtree(work, ignore_errors=True)
    if "raw" not in options.formats:
        raw.unlink()
        files = [f for f in files if f.format != "raw"]
    manifest = ImageManifest(
        name=options.name,
        files=files,
        root_label=ROOT_LABEL,
        root_fs_uuid=fs_uuid,
        root_size=layout.root_bytes,
        root_offset=layout.root_offset,
        grubenv_offset=grubenv_offset,
        kernel_version=base.kernel_version,
        kernel_args=options.kernel_args,
        base_key=base.key,
        base_reused=base.reused,
        bootseed_debs=debs.names,
        initramfs_hook=True,
        packages=base.packages,
        steps=[asdict(r) for r in progress.records],
        seconds=round(time.monotonic() - started, 1),
    )
    for entry in files:
        write_manifest(manifest, Path(entry.path))
    return manifest
