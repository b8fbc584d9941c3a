"""Shared helpers for the seed-source tests: a DiscoveryConfig that can only see
what the test made (its own root, DMI dir, endpoints and devices)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bootseed.early.discover import DiscoveryConfig


def make_dmi(base: Path, **fields: str) -> str:
    dmi = base / "dmi"
    dmi.mkdir(exist_ok=True)
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
