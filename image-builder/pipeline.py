"""The image-build pipeline both image kinds share.

``build.py`` (bootseed inside) and ``cloudinit_image.py`` (Debian's cloud-init
inside, for benchmarks) differ only in what goes into the image tree. Everything
around that is here: the options, the work paths of one build, the base tree and
image tree steps, the disk assembly (partition table, ext4 root filled from the
tree, GRUB boot code), turning a failed step into :class:`BuildError` and the
manifest written beside each image file.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from bootseed.image_builder import disk, grub, initramfsgen, rootfs
from bootseed.image_builder.basetree import BaseTree, BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.manifest import ImageFile, ImageManifest, write_manifest
from bootseed.image_builder.progress import Progress

ROOT_LABEL = "bootseed-root"
DEFAULT_ROOT_SIZE = 10 * disk.GIB
# console=ttyS0 last: it becomes /dev/console, so the serial log has
# everything. The lab adds its arguments through the GRUB environment block.
DEFAULT_KERNEL_ARGS = "console=tty0 console=ttyS0,115200 net.ifnames=1"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
AGENTS = ("bootseed", "cloud-init")


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
    # False: the ``bootseed`` package alone, without ``bootseed-initramfs`` (no early
    # stage in the initramfs: the late agent finds the seed by itself).
    initramfs_part: bool = True
    # Fallback public keys for the initramfs SSH server (a root that will not mount),
    # besides the instance's own keys from its seed (docs/root-will-not-mount.md).
    initramfs_ssh_keys: tuple[str, ...] = ()
    # "bios", "uefi" or "both" (manifest.FIRMWARES): which boot code the disk carries.
    firmware: str = "bios"
    # What makes the initramfs: "initramfs-tools" or "dracut" (initramfsgen.GENERATORS).
    # It is a base tree package, so each generator has a base tree of its own.
    initramfs: str = initramfsgen.DEFAULT_GENERATOR


class BuildError(Exception):
    """The build stopped; the message says at which step and why."""


@dataclass(frozen=True)
class DiskFacts:
    """What the lab needs to know about the assembled disk."""

    fs_uuid: str
    grubenv_offset: int


@dataclass
class ImageJob:
    """One build: its options, where things go, its progress and its clock."""

    options: BuildOptions
    progress: Progress
    started: float
    cache: Path
    out: Path
    work: Path
    tree: Path
    raw: Path
    log_path: Path
    layout: disk.DiskLayout

    @classmethod
    def start(cls, options: BuildOptions, progress: Progress) -> ImageJob:
        started = time.monotonic()
        out = options.out_dir.resolve()
        out.mkdir(parents=True, exist_ok=True)
        work = out / f".{options.name}.work"
        return cls(options=options, progress=progress, started=started,
                   cache=cache_root(options.cache), out=out, work=work, tree=work / "root",
                   raw=out / f"{options.name}.raw",
                   log_path=out / f"{options.name}.build.log",
                   layout=disk.DiskLayout(root_bytes=options.root_size,
                                          firmware=options.firmware))

    @contextmanager
    def logged_steps(self) -> Iterator[IO[str]]:
        """The build log; an exception in a step becomes a BuildError naming the step."""
        with open(self.log_path, "w") as log:
            try:
                yield log
            except Exception as exc:
                records = self.progress.records
                failed = records[-1].name if records else "setup"
                raise BuildError(f"{failed}: {exc} (full log: {self.log_path})") from exc

    def base_tree(self, log: IO[str]) -> BaseTree:
        spec = self.options.base
        spec = replace(spec, packages=initramfsgen.base_packages(spec.packages,
                                                                 self.options.initramfs))
        with self.progress.step("Base tree (mmdebstrap, cached by package list)") as step:
            base = ensure_base_tree(spec, self.cache, log=log)
            step.note = f"{'cached' if base.reused else 'built'} {base.key}"
        return base

    def image_tree(self, base: BaseTree, log: IO[str]) -> None:
        with self.progress.step("Image tree (copy of the base)"):
            rootfs.copy_base(base.root, self.tree, log=log)
            rootfs.configure_system(self.tree, ROOT_LABEL, self.options.hostname, log=log)

    def assemble_disk(self, log: IO[str]) -> DiskFacts:
        """Partition table, root filesystem made from the tree, GRUB boot code."""
        raw, layout = self.raw, self.layout
        boot_parts = " + ".join(name for name, present in (("BIOS boot", layout.has_bios_boot),
                                                           ("ESP", layout.has_esp)) if present)
        with self.progress.step(f"Partition table (GPT, {boot_parts} + root)"):
            disk.write_partition_table(raw, layout, log=log)
        with self.progress.step(f"Root filesystem (ext4, {layout.root_bytes // disk.GIB} GiB)"):
            disk.make_root_filesystem(raw, layout, self.tree, ROOT_LABEL, log=log)
        with self.progress.step(f"GRUB boot code ({layout.firmware})") as step:
            placed = []
            if layout.has_bios_boot:
                core = grub.make_core_image(self.work / "core.img", ROOT_LABEL, log=log)
                grub.install_bios_grub(raw, core, layout.bios_start, layout.bios_sectors)
                placed.append("MBR + BIOS boot partition")
            if layout.has_esp:
                efi = grub.make_efi_image(self.work / "BOOTX64.EFI", ROOT_LABEL, log=log)
                disk.write_esp(raw, layout, {grub.EFI_BOOT_PATH: efi}, self.work, log=log)
                placed.append(f"{grub.EFI_BOOT_PATH} on the ESP")
            step.note = ", ".join(placed)
            grubenv_offset = disk.file_disk_offset(raw, layout.root_offset,
                                                   "/boot/grub/grubenv")
            fs_uuid = disk.fs_uuid(raw, layout.root_offset)
        return DiskFacts(fs_uuid=fs_uuid, grubenv_offset=grubenv_offset)

    def remove_work(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def finish(self, files: list[ImageFile], base: BaseTree, facts: DiskFacts, *,
               packages: dict[str, str], bootseed_debs: list[str],
               initramfs_hook: bool, initramfs: str) -> ImageManifest:
        """The manifest, written beside each image file."""
        manifest = ImageManifest(
            name=self.options.name,
            files=files,
            root_label=ROOT_LABEL,
            root_fs_uuid=facts.fs_uuid,
            root_size=self.layout.root_bytes,
            root_offset=self.layout.root_offset,
            grubenv_offset=facts.grubenv_offset,
            kernel_version=base.kernel_version,
            kernel_args=self.options.kernel_args,
            base_key=base.key,
            base_reused=base.reused,
            bootseed_debs=bootseed_debs,
            initramfs_hook=initramfs_hook,
            initramfs=initramfs,
            packages=packages,
            steps=[asdict(r) for r in self.progress.records],
            seconds=round(time.monotonic() - self.started, 1),
            release=base.spec.suite,
            arch=base.spec.arch,
            built=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            firmware=self.layout.firmware,
        )
        for entry in files:
            write_manifest(manifest, Path(entry.path))
        return manifest


def file_entry(path: Path, fmt: str, checksum: bool) -> ImageFile:
    return ImageFile(
        path=str(path),
        format=fmt,
        size=path.stat().st_size,
        allocated=disk.allocated_bytes(path),
        sha256=disk.sha256_file(path) if checksum else "",
    )
