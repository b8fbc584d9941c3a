"""The cached Debian root tree every image starts from (built with mmdebstrap).

A :class:`BaseTreeSpec` (suite, architecture, mirrors, package list) fully
determines the tree, so its :meth:`~BaseTreeSpec.key` names the cache entry:
``<cache>/base/<key>/root`` plus ``spec.json``, written last as the
completion mark. Downloaded .debs are kept in ``<cache>/debs`` and handed to
the next mmdebstrap run, so changing the package list downloads only what is
new. Building needs root (mmdebstrap ``--mode=root``: device nodes and file
ownership must be real for the image).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from bootseed.image_builder.cache import content_key, locked
from bootseed.image_builder.procrun import run

DEFAULT_MIRRORS: tuple[str, ...] = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)

# Lean on purpose: what first boot needs (systemd, udev, a kernel that boots
# virtio under QEMU, initramfs-tools for the early hook, Python for both
# stages, networking and SSH for the modules to configure), nothing else. The
# Python libraries are the bootseed package's Depends, so installing the .deb
# needs no download. The cloud kernel flavour boots faster under TCG and still
# has virtio, ata_piix, sr_mod, iso9660 and vfat, which seed discs need.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "systemd-sysv",
    "udev",
    "dbus",
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "zstd",
    "python3",
    "python3-yaml",
    "python3-jsonschema",
    "python3-jinja2",
    "python3-cryptography",
    "iproute2",
    "openssh-server",
    "sudo",
    "kmod",
    "procps",
    "netbase",
    "e2fsprogs",
    # growpart, for the growpart module (resize2fs is in e2fsprogs)
    "cloud-guest-utils",
    # bootseed-initramfs Depends on it: the initramfs SSH server for a root that will not
    # mount (docs/root-will-not-mount.md)
    "dropbear-bin",
    # bootseed-initramfs Depends on it: the early stage's netlink (docs/network.md)
    "python3-pyroute2",
)


class BaseTreeError(Exception):
    """The base tree cannot be built or the cached one is unusable."""


@dataclass(frozen=True)
class BaseTreeSpec:
    suite: str = "bookworm"
    arch: str = "amd64"
    variant: str = "apt"
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    mirrors: tuple[str, ...] = DEFAULT_MIRRORS

    def key(self) -> str:
        data = asdict(self)
        data["packages"] = sorted(set(self.packages))
        return content_key(data)


@dataclass
class BaseTree:
    spec: BaseTreeSpec
    key: str
    root: Path
    kernel_version: str
    reused: bool
    packages: dict[str, str] = field(default_factory=dict)


def _kernel_version(root: Path) -> str:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BaseTreeError(f"{root}/boot has no vmlinuz-*: the kernel package did not install")
    return kernels[-1].name.removeprefix("vmlinuz-")


def installed_packages(root: Path) -> dict[str, str]:
    """Package name -> version of every package installed in ``root``."""
    out = run(
        [
            "dpkg-query",
            f"--admindir={root}/var/lib/dpkg",
            "-W",
            "-f",
            "${Package}\t${Version}\t${db:Status-Abbrev}\n",
        ]
    )
    packages: dict[str, str] = {}
    for line in out.splitlines():
        name, version, status = [*line.split("\t"), "", ""][:3]
        if status.startswith("ii"):
            packages[name] = version
    return packages


def _mmdebstrap_argv(spec: BaseTreeSpec, target: Path, debs: Path) -> list[str]:
    # The setup/customize hooks carry .debs in from and back out to the shared
    # download cache; the archive directory inside the tree is emptied again
    # by mmdebstrap's own cleanup, so the tree stays lean.
    return [
        "mmdebstrap",
        "--mode=root",
        f"--variant={spec.variant}",
        f"--architectures={spec.arch}",
        "--include=" + ",".join(spec.packages),
        "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
        spec.suite,
        str(target),
        *spec.mirrors,
    ]


def ensure_base_tree(spec: BaseTreeSpec, cache: Path, log: IO[str] | None = None) -> BaseTree:
    """Return the cached tree for ``spec``, building it first if there is none."""
    key = spec.key()
    entry = cache / "base" / key
    marker = entry / "spec.json"
    with locked(cache / "base" / f"{key}.lock"):
        reused = marker.is_file() and (entry / "root").is_dir()
        if not reused:
            if os.geteuid() != 0:
                raise BaseTreeError("building the base tree needs root (mmdebstrap --mode=root)")
            debs = cache / "debs"
            debs.mkdir(parents=True, exist_ok=True)
            if entry.exists():
                shutil.rmtree(entry)
            staging = cache / "base" / f"{key}.partial"
            if staging.exists():
                shutil.rmtree(staging)
            staging.mkdir(parents=True)
            run(_mmdebstrap_argv(spec, staging / "root", debs), log=log, timeout=3600)
            _kernel_version(staging / "root")
            (staging / "spec.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")
            staging.rename(entry)
        root = entry / "root"
        return BaseTree(
            spec=spec,
            key=key,
            root=root,
            kernel_version=_kernel_version(root),
            reused=reused,
            packages=installed_packages(root),
        )
