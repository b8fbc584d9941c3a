"""Wheels of bootseed (from the working tree) and its dependencies, for the guest.

The guest runs Debian's Python 3.11, the same interpreter as the builder's
venv, so wheels built here install there unchanged. bootseed's own wheel is
rebuilt every time (it is the code under test) from a copy of the tree, so a
build never writes into the shared work tree. Dependency wheels are cached
under ``<cache>/wheels/<key>``, keyed by the dependency list and the Python
version; a rebuild with unchanged dependencies never touches the network.
"""

from __future__ import annotations

import configparser
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bootseed.image_builder.cache import content_key, locked
from bootseed.image_builder.procrun import CommandFailed, run

_COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".typecheck", ".hypothesis", "out", "cache", "tests",
)


@dataclass
class WheelSet:
    directory: Path
    bootseed_wheel: Path
    dependency_dir: Path

    @property
    def find_links(self) -> list[Path]:
        return [self.directory, self.dependency_dir]


def install_requires(source: Path) -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(source / "setup.cfg")
    raw = parser.get("options", "install_requires", fallback="")
    return [line.strip() for line in raw.splitlines() if line.strip()]


def build_wheels(
    source: Path, cache: Path, out: Path, python: str = sys.executable, log: IO[str] | None = None
) -> WheelSet:
    """Build bootseed's wheel into ``out`` and make sure its dependencies are cached."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("bootseed-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="bootseed-src-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=_COPY_IGNORE, symlinks=True)
        run(
            [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "-w", str(out), str(copy)],
            log=log,
            timeout=600,
        )
    wheels = sorted(out.glob("bootseed-*.whl"))
    if not wheels:
        raise CommandFailed(["pip", "wheel"], 1, f"no bootseed wheel appeared in {out}")
    requirements = install_requires(source)
    key = content_key({"requires": requirements, "python": list(sys.version_info[:2])})
    deps = cache / "wheels" / key
    with locked(cache / "wheels" / f"{key}.lock"):
        deps.mkdir(parents=True, exist_ok=True)
        base = [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                "-w", str(deps), "--find-links", str(deps)]
        try:
            run([*base, "--no-index", *requirements], log=log, timeout=600)
        except CommandFailed:
            run([*base, *requirements], log=log, timeout=1800)
    return WheelSet(directory=out, bootseed_wheel=wheels[-1], dependency_dir=deps)
