"""Small stand-ins for ``bootseed-image build`` output: real files and real manifests.

The catalog and site tests need build directories, not bootable images: a
few KiB of known bytes per format and a manifest written by the builder's own
``write_manifest``, so the files are what a build leaves, only smaller.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bootseed.image_builder.manifest import ImageFile, ImageManifest, write_manifest


def fake_build(out: Path, *, name: str = "bootseed-bookworm-amd64", release: str = "bookworm",
               arch: str = "amd64", built: str = "2026-11-30T10:00:00Z",
               formats: tuple[str, ...] = ("raw", "qcow2"),
               kernel: str = "6.1.0-28-cloud-amd64", firmware: str = "bios") -> ImageManifest:
    """Write ``<name>.<fmt>`` files and their manifests into ``out``; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        data = f"{name} {fmt} built {built}\n".encode() * 512
        path.write_bytes(data)
        files.append(ImageFile(path=str(path), format=fmt, size=len(data), allocated=len(data),
                               sha256=hashlib.sha256(data).hexdigest()))
    manifest = ImageManifest(
        name=name, files=files, root_label="bootseed-root", root_fs_uuid="0" * 8,
        root_size=1 << 30, root_offset=1 << 20, grubenv_offset=1 << 21,
        kernel_version=kernel, kernel_args="console=ttyS0", base_key="k" * 16,
        base_reused=True, bootseed_debs=["bootseed_0.1.0_all.deb"], initramfs_hook=True,
        packages={"bootseed": "0.1.0", "linux-image-cloud-amd64": kernel, "openssh-server":
                  "1:9.2p1-2+deb12u3"},
        release=release, arch=arch, built=built, firmware=firmware)
    for entry in files:
        write_manifest(manifest, Path(entry.path))
    return manifest
