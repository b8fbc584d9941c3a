"""bootseed in an image the way users get it: the Debian packages, installed with apt.

* :func:`ensure_debs` builds ``bootseed_*.deb`` and ``bootseed-initramfs_*.deb`` with
  ``scripts/build-deb`` and keeps them under ``<cache>/bootseed-debs/<key>``, the key being
  a hash of the source files the build copies (what git tracks or would track). An
  unchanged tree reuses the packages; a changed one builds them again (~20 s). Only the
  newest few entries are kept.
* :func:`install_debs` copies them into the image tree and runs ``apt-get install`` in a
  chroot. Their dependencies are in the base tree already, so apt needs no package index
  and no network. The package's trigger rebuilds the initramfs; the listing is checked
  for the early stage, and so is the package's bytecode (:func:`ensure_bytecode`).
* :func:`remove_bootseed` is ``apt-get remove bootseed`` in the tree (the packaging tests'
  "removal leaves nothing" image).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bootseed.image_builder.aptchroot import APT_ENV, apt_chroot
from bootseed.image_builder.cache import KEY_LENGTH, locked
from bootseed.image_builder.initramfsgen import INITRAMFS_TOOLS, InitramfsGenerator, listing
from bootseed.image_builder.procrun import run

PACKAGES = ("bootseed", "bootseed-initramfs")
CACHE_DIR = "bootseed-debs"
KEEP_ENTRIES = 4
COMPLETE_MARKER = ".complete"
GUEST_DEB_DIR = "/tmp/bootseed-debs"


class DebInstallError(Exception):
    """The packages could not be built, installed or removed; the message says why."""


@dataclass(frozen=True)
class DebSet:
    key: str
    directory: Path
    debs: tuple[Path, ...]
    reused: bool

    @property
    def names(self) -> list[str]:
        return [deb.name for deb in self.debs]


def source_files(source: Path) -> list[str]:
    """The files ``scripts/build-deb`` copies: tracked or untracked-but-not-ignored."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=source, capture_output=True,
                             check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise DebInstallError(f"{source}: cannot list the source files with git ({exc})") from None
    return sorted({name.decode() for name in out.split(b"\0") if name})


def source_key(source: Path) -> str:
    """A hash of every source file's path, mode and content (deleted files left out)."""
    digest = hashlib.sha256()
    for name in source_files(source):
        path = source / name
        if not path.is_file():
            continue
        digest.update(name.encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:KEY_LENGTH]


def _found_debs(directory: Path) -> tuple[Path, ...]:
    debs: list[Path] = []
    for package in PACKAGES:
        matches = sorted(directory.glob(f"{package}_*.deb"))
        if len(matches) != 1:
            raise DebInstallError(f"{directory}: expected one {package}_*.deb, found "
                                  f"{len(matches)}")
        debs.append(matches[0])
    return tuple(debs)


def _prune(root: Path, keep: str) -> None:
    entries = [p for p in root.iterdir() if p.is_dir() and p.name != keep]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES - 1:]:
        shutil.rmtree(old, ignore_errors=True)
        old.with_name(old.name + ".lock").unlink(missing_ok=True)


def ensure_debs(source: Path, cache: Path, log: IO[str] | None = None) -> DebSet:
    """bootseed's packages for ``source``: from the cache, else built now."""
    key = source_key(source)
    root = cache / CACHE_DIR
    entry = root / key
    with locked(root / f"{key}.lock"):
        if (entry / COMPLETE_MARKER).exists():
            entry.touch()
            return DebSet(key, entry, _found_debs(entry), reused=True)
        shutil.rmtree(entry, ignore_errors=True)
        partial = root / f"{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        run([source / "scripts" / "build-deb", partial], log=log, timeout=900,
            env={"PATH": APT_ENV["PATH"]})
        debs = _found_debs(partial)
        (partial / COMPLETE_MARKER).write_text(" ".join(d.name for d in debs) + "\n")
        partial.rename(entry)
    _prune(root, keep=key)
    return DebSet(key, entry, _found_debs(entry), reused=False)


def installed_versions(tree: Path) -> dict[str, str]:
    """bootseed's packages installed in the tree, with their versions."""
    # dpkg-query exits 1 when a package is unknown: read its output whatever the status.
    proc = subprocess.run(["chroot", str(tree), "dpkg-query", "-W", "-f",
                           "${Package} ${Status} ${Version}\n", *PACKAGES],
                          capture_output=True, text=True, env=APT_ENV, timeout=120, check=False)
    versions: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[3] == "installed":
            versions[parts[0]] = parts[4]
    return versions


def install_debs(tree: Path, debs: DebSet, kernel_version: str,
                 log: IO[str] | None = None,
                 extra: tuple[Path, ...] = (),
                 packages: tuple[str, ...] = PACKAGES,
                 generator: InitramfsGenerator = INITRAMFS_TOOLS) -> dict[str, str]:
    """``apt-get install`` ``packages`` of bootseed's (and ``extra`` .debs) into the tree;
    return what got installed.

    Fails when apt does (a dependency missing from the base tree is named in the
    message), when the initramfs has no early stage although bootseed-initramfs was
    installed, or has one although it was not.
    """
    unknown = set(packages) - set(PACKAGES)
    if unknown or "bootseed" not in packages:
        raise DebInstallError(f"packages {packages}: bootseed plus any of {PACKAGES}")
    guest_dir = tree / GUEST_DEB_DIR.lstrip("/")
    shutil.rmtree(guest_dir, ignore_errors=True)
    guest_dir.mkdir(parents=True)
    every = (*(deb for deb in debs.debs if deb.name.split("_", 1)[0] in packages), *extra)
    for deb in every:
        shutil.copy2(deb, guest_dir / deb.name)
    try:
        with apt_chroot(tree):
            # No --no-download: with it apt refuses local .deb paths ("not absolute").
            # The chroot has no resolv.conf, so a dependency missing from the base tree
            # fails the download and apt names it.
            run(["chroot", str(tree), "apt-get", "install", "-y", "-q",
                 "--no-install-recommends",
                 *(f"{GUEST_DEB_DIR}/{deb.name}" for deb in every)],
                log=log, env=APT_ENV, timeout=1200)
            paths = listing(str(tree), generator, kernel_version)
            compiled = ensure_bytecode(tree, log)
            if compiled and log is not None:
                log.write(f"bytecode: compiled {compiled} file(s) py3compile left out\n")
    finally:
        shutil.rmtree(guest_dir, ignore_errors=True)
    with_hook = "bootseed-initramfs" in packages
    marker = generator.early_marker
    if with_hook and marker not in paths:
        raise DebInstallError(f"the {generator.name} initramfs has no {marker} "
                              "(the hook left the early stage out; see the build log)")
    if not with_hook and marker in paths:
        raise DebInstallError(f"the initramfs has {marker} although bootseed-initramfs "
                              "was not installed")
    versions = installed_versions(tree)
    missing = [p for p in packages if p not in versions]
    if missing:
        raise DebInstallError(f"apt-get finished but {', '.join(missing)} is not installed")
    unwanted = sorted(set(versions) - set(packages))
    if unwanted:
        raise DebInstallError(f"{', '.join(unwanted)} got installed although not asked for")
    return versions


def stale_bytecode(package: Path, cache_tag: str) -> list[Path]:
    """The ``.py`` files under ``package`` without a ``__pycache__/<name>.<cache_tag>.pyc``
    that the interpreter would use: a timestamp-checked header (flags 0) whose source
    mtime and size match the file. Under TCG a missing or stale ``.pyc`` costs the first
    boot's interpreter seconds of compiling."""
    stale: list[Path] = []
    for source in sorted(package.rglob("*.py")):
        compiled = source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
        try:
            header = compiled.read_bytes()[:16]
            info = source.stat()
        except OSError:
            stale.append(source)
            continue
        if len(header) < 16:
            stale.append(source)
            continue
        flags, mtime, size = struct.unpack("<III", header[4:16])
        if flags != 0 or mtime != int(info.st_mtime) & 0xFFFFFFFF \
                or size != info.st_size & 0xFFFFFFFF:
            stale.append(source)
    return stale


def ensure_bytecode(tree: Path, log: IO[str] | None = None) -> int:
    """Compile the installed package's bytecode in the tree where the package's own
    ``py3compile`` left any out; how many files it compiled. Raises when some still
    have none."""
    tag = subprocess.run(["chroot", str(tree), "python3", "-c",
                          "import sys; print(sys.implementation.cache_tag)"],
                         capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    packages = sorted(tree.glob("usr/lib/python3*/dist-packages/bootseed"))
    if not packages:
        raise DebInstallError("no bootseed package under /usr/lib/python3*/dist-packages")
    compiled = 0
    for package in packages:
        stale = stale_bytecode(package, tag)
        if not stale:
            continue
        inside = "/" + str(package.relative_to(tree))
        run(["chroot", str(tree), "python3", "-m", "compileall", "-q",
             "--invalidation-mode", "timestamp", inside], log=log,
            timeout=600)
        compiled += len(stale)
        still = stale_bytecode(package, tag)
        if still:
            raise DebInstallError(f"{len(still)} file(s) of {inside} have no usable bytecode "
                                  f"for {tag}, e.g. {still[0].relative_to(tree)}")
    return compiled


def remove_bootseed(tree: Path, kernel_version: str, log: IO[str] | None = None) -> None:
    """``apt-get remove bootseed`` (which takes bootseed-initramfs with it)."""
    with apt_chroot(tree):
        run(["chroot", str(tree), "apt-get", "remove", "-y", "-q", "bootseed"],
            log=log, env=APT_ENV, timeout=1200)
        paths = listing(str(tree), INITRAMFS_TOOLS, kernel_version)
    if INITRAMFS_TOOLS.early_marker in paths:
        raise DebInstallError("the initramfs still has the early stage after the removal")
    left = installed_versions(tree)
    if left:
        raise DebInstallError(f"still installed after the removal: {', '.join(left)}")
