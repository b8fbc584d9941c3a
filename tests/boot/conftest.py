"""Boot suite fixtures: one image per pytest session, one lab for every boot.

The image is built once per session into a temp dir (about 20 s with the base
tree cached; the base tree itself is cached across sessions in
``$BOOTSEED_CACHE`` or ``/var/cache/bootseed``, keyed by its package list).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bootseed.image_builder.build import BuildOptions, build_image
from bootseed.image_builder.lab import BootLab

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SEED = REPO / "examples" / "nocloud"


@pytest.fixture(scope="session")
def lab_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the boot suite builds images with mmdebstrap --mode=root: run as root")
    out = tmp_path_factory.mktemp("image")
    manifest = build_image(BuildOptions(out_dir=out, checksums=False), quiet=True)
    raw = manifest.file("raw")
    assert raw is not None
    return Path(raw.path)


@pytest.fixture(scope="session")
def lab(lab_image: Path, tmp_path_factory: pytest.TempPathFactory) -> BootLab:
    return BootLab(lab_image, tmp_path_factory.mktemp("boots"))
