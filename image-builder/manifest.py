"""What a build produced: the manifest ``bootseed-image build --json`` prints.

It is also written beside the image as ``<image>.manifest.json``; the boot
lab reads ``grubenv_offset`` and ``root_offset`` from it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bootseed.image_builder.initramfsgen import DEFAULT_GENERATOR

# 2: bootseed_debs (the installed packages) replaced bootseed_wheel.
MANIFEST_FORMAT = 2
# What a build can write: vmdk is streamOptimized; ova is the OVF descriptor,
# that VMDK and a SHA256 manifest in one tar (ova.py).
FORMATS = ("raw", "qcow2", "vmdk", "ova")
# Which firmware an image boots on (disk.py lays out the boot partitions for
# it): "both" carries GRUB for BIOS and for UEFI on one GPT disk.
FIRMWARES = ("bios", "uefi", "both")


@dataclass
class ImageFile:
    path: str
    format: str
    size: int
    allocated: int
    sha256: str


@dataclass
class ImageManifest:
    name: str
    files: list[ImageFile]
    root_label: str
    root_fs_uuid: str
    root_size: int
    root_offset: int
    grubenv_offset: int
    kernel_version: str
    kernel_args: str
    base_key: str
    base_reused: bool
    # bootseed's .deb files installed in the image (empty: no bootseed in it).
    bootseed_debs: list[str]
    initramfs_hook: bool
    packages: dict[str, str]
    steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # Debian suite and architecture of the base, and when the build finished
    # (UTC, ISO 8601): what the image catalog (catalog.py) files a build under.
    release: str = ""
    arch: str = ""
    built: str = ""
    format: int = MANIFEST_FORMAT
    # Which firmware the disk boots on: "bios", "uefi" or "both" (FIRMWARES).
    firmware: str = "bios"
    # What made the initramfs: "initramfs-tools" or "dracut" (initramfsgen.GENERATORS).
    initramfs: str = DEFAULT_GENERATOR

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def file(self, fmt: str) -> ImageFile | None:
        return next((f for f in self.files if f.format == fmt), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageManifest:
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"image manifest format {data.get('format')!r} is not supported")
        files = [ImageFile(**f) for f in data["files"]]
        fields = {k: v for k, v in data.items() if k != "files"}
        return cls(files=files, **fields)


def manifest_path(image: Path) -> Path:
    return image.with_name(image.name + ".manifest.json")


def write_manifest(manifest: ImageManifest, image: Path) -> Path:
    path = manifest_path(image)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.rename(path)
    return path


def read_manifest(image: Path) -> ImageManifest:
    path = manifest_path(image)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no build manifest beside the image") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    return ImageManifest.from_json(data)
