"""Shared helpers for the seed-source tests: a DiscoveryConfig that can only see
what the test made (its own root, DMI dir, endpoints and devices)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bootseed.early.blockdev import BlockDevice, mounted
from bootseed.early.discover import DiscoveryConfig


def make_dmi(base: Path, **fields: str) -> str:
    dmi = base / "dmi"
    dmi.mkdir(parents=True, exist_ok=True)
    for name, value in fields.items():
        (dmi / name).write_text(value + "\n")
    return str(dmi)


def isolated_config(tmp_path: Path, cmdline: str = "", **overrides: Any) -> DiscoveryConfig:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    settings: dict[str, Any] = {
        "cmdline": cmdline,
        "root": str(root),
        "dmi_dir": make_dmi(tmp_path),
        "ec2_endpoints": [],
        "openstack_endpoints": [],
        "scan_discs": False,
        "total_budget": 10.0,
    }
    settings.update(overrides)
    return DiscoveryConfig(**settings)


def write_seed_dir(directory: Path, files: dict[str, bytes | str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / name
        if isinstance(data, str):
            target.write_text(data)
        else:
            target.write_bytes(data)
    return directory


def kernel_filesystems() -> set[str]:
    with open("/proc/filesystems") as handle:
        return {line.split()[-1] for line in handle if line.strip()}


# (device, "kernel" | "extract") for every disc a test mounter presented.
MOUNT_LOG: list[tuple[str, str]] = []


@contextmanager
def mount_or_extract(device: BlockDevice, timeout: float) -> Iterator[Path]:
    """The real kernel mount when this kernel has the filesystem; otherwise the disc's
    files read from the device itself with pycdlib / mtools (a host kernel without
    iso9660 or vfat cannot mount them; the boot lab covers the mount there)."""
    if device.fstype is None or device.fstype in kernel_filesystems():
        MOUNT_LOG.append((device.path, "kernel"))
        with mounted(device, timeout) as path:
            yield path
        return
    from bootseed.image_builder.seeddisc import extract_disc

    MOUNT_LOG.append((device.path, "extract"))
    with tempfile.TemporaryDirectory(prefix="disc-") as tmp:
        yield extract_disc(device.path, tmp)
