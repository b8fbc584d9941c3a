"""``/boot/dist-kernel``: hard links to the kernel and initramfs the system shipped with.

A hard link keeps the original file alive when the package that owns it is
upgraded or removed (dpkg unlinks or renames the old file; our link still
names its inode). Where a link is impossible (another filesystem, a filesystem
without hard links) the file is copied and the result says so. A manifest
records each file's SHA-256 so ``status`` can tell when one was damaged in
place, which a hard link cannot protect against.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from bootseed.late.fallback.config import DIST_DIR
from bootseed.late.target import TargetRoot

MANIFEST = f"{DIST_DIR}/manifest.json"
NAMES = ("vmlinuz", "initrd.img")
# Errors after which a copy is the only way to keep the file.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


class DistKernelError(Exception):
    """The original kernel or initramfs cannot be found or kept."""


@dataclass(frozen=True)
class KeptFile:
    name: str  # vmlinuz | initrd.img
    source: str  # the original, as the target sees it
    method: str  # link | copy
    sha256: str
    size: int
    note: str = ""


@dataclass
class DistKernel:
    version: str
    files: list[KeptFile] = field(default_factory=list)
    marker: str = ""

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "marker": self.marker,
                "files": [asdict(f) for f in self.files]}


def _resolve_inside(target: TargetRoot, inside: str) -> str:
    """Follow symlinks the way the target would (absolute links stay inside it)."""
    path = PurePosixPath(inside)
    for _ in range(16):
        host = target.path(str(path))
        if not host.is_symlink():
            return str(path)
        link = PurePosixPath(os.readlink(host))
        path = link if link.is_absolute() else path.parent / link
        path = PurePosixPath(os.path.normpath(str(path)))
    raise DistKernelError(f"{inside}: too many levels of symbolic links")


def _version_key(version: str) -> list[tuple[int, str]]:
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.\-+~]", version)]


def find_default_kernel(target: TargetRoot) -> tuple[str, str, str]:
    """(kernel, initramfs, version) the system boots by default, as the target sees them.

    Debian keeps ``/vmlinuz`` and ``/initrd.img`` (or the same under ``/boot``)
    pointing at the newest kernel; without them, the newest ``/boot/vmlinuz-*``.
    """
    for base in ("/", "/boot/"):
        link = target.path(f"{base}vmlinuz")
        if link.exists():
            kernel = _resolve_inside(target, f"{base}vmlinuz")
            break
    else:
        found = sorted((p.name for p in target.path("/boot").glob("vmlinuz-*")),
                       key=lambda n: _version_key(n[len("vmlinuz-"):]))
        if not found:
            raise DistKernelError(f"no kernel in {target.path('/boot')} (no vmlinuz-*)")
        kernel = f"/boot/{found[-1]}"
    name = PurePosixPath(kernel).name
    version = name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else ""
    initrd = f"/boot/initrd.img-{version}" if version else _resolve_inside(target, "/initrd.img")
    if not target.path(initrd).is_file():
        raise DistKernelError(f"kernel {kernel} has no initramfs at {initrd}")
    return kernel, initrd, version


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _keep(source: Path, dest: Path) -> tuple[str, str]:
    """Hard-link ``source`` to ``dest``, or copy it where linking is impossible."""
    tmp = dest.with_name(f".{dest.name}.new")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(source, tmp)
        method, note = "link", ""
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        shutil.copy2(source, tmp)
        method = "copy"
        note = f"copied, not linked: {os.strerror(exc.errno or 0)} (uses its own disk space)"
    os.replace(tmp, dest)
    return method, note


def keep_dist_kernel(target: TargetRoot, kernel: str, initrd: str, version: str,
                     marker_name: str) -> DistKernel:
    """Make ``/boot/dist-kernel`` hold ``kernel`` and ``initrd``; write the manifest."""
    dist = target.path(DIST_DIR)
    dist.mkdir(mode=0o755, parents=True, exist_ok=True)
    kept = DistKernel(version=version)
    for name, source in zip(NAMES, (kernel, initrd), strict=True):
        host = target.path(source)
        if not host.is_file():
            raise DistKernelError(f"{source}: not a file")
        method, note = _keep(host, dist / name)
        stat = (dist / name).stat()
        kept.files.append(KeptFile(name=name, source=source, method=method,
                                   sha256=sha256_of(dist / name), size=stat.st_size, note=note))
    # GRUB finds the filesystem holding the fallback files by this file's name.
    for old in dist.glob("bootseed-*.id"):
        old.unlink()
    (dist / marker_name).write_text("bootseed fallback kernel directory\n")
    kept.marker = marker_name
    target.write(MANIFEST, json.dumps(kept.to_json(), indent=2) + "\n", mode=0o644)
    return kept


def read_manifest(target: TargetRoot) -> DistKernel | None:
    try:
        doc = json.loads(target.path(MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise DistKernelError(f"{MANIFEST}: unreadable ({exc})") from None
    return DistKernel(version=str(doc.get("version", "")), marker=str(doc.get("marker", "")),
                      files=[KeptFile(**f) for f in doc.get("files", [])])


@dataclass(frozen=True)
class FileCheck:
    name: str
    ok: bool
    detail: str


def check_dist_kernel(target: TargetRoot, verify_hash: bool = True) -> list[FileCheck]:
    """Is each kept file there, undamaged, and how does it relate to its original now?"""
    manifest = read_manifest(target)
    if manifest is None:
        return [FileCheck("manifest", False, f"{MANIFEST} missing: run 'bootseed fallback "
                                             "install'")]
    checks: list[FileCheck] = []
    for kept in manifest.files:
        path = target.path(f"{DIST_DIR}/{kept.name}")
        try:
            stat = path.stat()
        except FileNotFoundError:
            checks.append(FileCheck(kept.name, False, f"{path} is missing"))
            continue
        if stat.st_size != kept.size or (verify_hash and sha256_of(path) != kept.sha256):
            checks.append(FileCheck(kept.name, False, f"{path} changed since install "
                                                      "(size or SHA-256 differs)"))
            continue
        checks.append(FileCheck(kept.name, True, _relation(target, kept, stat)))
    return checks


def _relation(target: TargetRoot, kept: KeptFile, stat: os.stat_result) -> str:
    original = target.path(kept.source)
    try:
        now = original.stat()
    except FileNotFoundError:
        return f"{kept.method}; {kept.source} is gone, this keeps the original"
    if kept.method == "copy":
        return f"copy of {kept.source} ({kept.note})"
    if (now.st_ino, now.st_dev) == (stat.st_ino, stat.st_dev):
        return f"link, same file as {kept.source}"
    return f"link; {kept.source} has been replaced, this keeps the original"
