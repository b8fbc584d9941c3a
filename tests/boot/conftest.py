"""Boot suite fixtures: one image per pytest session, one lab for every boot.

The image is built once per session into a temp dir (about 20 s with the base
tree cached; the base tree itself is cached across sessions in
``$BOOTSEED_CACHE`` or ``/var/cache/bootseed``, keyed by its package list).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bootseed.image_builder.build import build_image
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.lab import BootLab
from bootseed.image_builder.mocks.aptrepo import LabRepo, build_lab_repo

from testsupport.labimage import lab_build_options

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SEED = REPO / "examples" / "nocloud"


@pytest.fixture(scope="session")
def lab_repo() -> LabRepo:
    """The lab's signed Debian repository, built once and cached across runs."""
    return build_lab_repo(cache_root())


@pytest.fixture(scope="session")
def lab_image(tmp_path_factory: pytest.TempPathFactory, lab_repo: LabRepo) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the boot suite builds images with mmdebstrap --mode=root: run as root")
    out = tmp_path_factory.mktemp("image")
    # Version 1.0 of the lab's test package, so a seed can upgrade it to 2.0.
    options = lab_build_options(out, extra_debs=(lab_repo.test_deb("1.0"),))
    manifest = build_image(options, quiet=True)
    raw = manifest.file("raw")
    assert raw is not None
    return Path(raw.path)


@pytest.fixture(scope="session")
def lab(lab_image: Path, tmp_path_factory: pytest.TempPathFactory) -> BootLab:
    return BootLab(lab_image, tmp_path_factory.mktemp("boots"))
