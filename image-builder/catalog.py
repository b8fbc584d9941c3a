"""``bootseed-image catalog``: a simplestreams mirror of built images.

From build output directories (each holding images and their
``<image>.manifest.json``) this writes a mirror tree::

    streams/v1/index.json                          format index:1.0
    streams/v1/com.example.bootseed:images.json    format products:1.0
    images/<release>/<arch>/<version>/<files>      the images and manifests

Products are keyed ``com.example.bootseed:<release>:<arch>``; versions by
build date ``YYYYMMDD``, ``YYYYMMDD.1`` ... when a day has several builds;
one item per image format plus the build manifest, each with its mirror
relative ``path``, ``size`` and ``sha256``. With a signing key every JSON
file also gets a clearsigned ``.sjson`` twin, and ``index.sjson`` points at
the signed product files (what simplestreams clients read when they verify).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bootseed.image_builder.disk import sha256_file
from bootseed.image_builder.manifest import ImageManifest, manifest_path
from bootseed.image_builder.procrun import run

STREAMS_DIR = "streams/v1"
CONTENT_ID = "com.example.bootseed:images"
PRODUCT_PREFIX = "com.example.bootseed"
DATATYPE = "image-downloads"
MANIFEST_FTYPE = "manifest"
OS_NAME = "debian"


class CatalogError(Exception):
    """A build directory cannot be catalogued; the message says which and why."""


@dataclass(frozen=True)
class Build:
    """One build found in a directory: its manifest and where its files are."""

    manifest: ImageManifest
    directory: Path

    @property
    def key(self) -> tuple[str, str]:
        return self.manifest.name, self.manifest.built

    @property
    def product(self) -> str:
        return f"{PRODUCT_PREFIX}:{self.manifest.release}:{self.manifest.arch}"


@dataclass(frozen=True)
class Signer:
    key_id: str
    gnupghome: Path


@dataclass
class Catalog:
    """What ``make_catalog`` wrote (paths relative to ``root``)."""

    root: Path
    index: str
    products: str
    signed: list[str] = field(default_factory=list)
    # product -> version keys, newest first
    versions: dict[str, list[str]] = field(default_factory=dict)


def find_builds(directories: list[Path]) -> list[Build]:
    """Every build whose manifest lies in one of ``directories`` (each build once)."""
    builds: dict[tuple[str, str], Build] = {}
    for directory in directories:
        if not directory.is_dir():
            raise CatalogError(f"{directory}: not a directory")
        found = sorted(directory.glob("*.manifest.json"))
        if not found:
            raise CatalogError(f"{directory}: no *.manifest.json (not a build output dir)")
        for path in found:
            try:
                manifest = ImageManifest.from_json(json.loads(path.read_text()))
            except (ValueError, TypeError, KeyError) as exc:
                raise CatalogError(f"{path}: {exc}") from None
            if not (manifest.release and manifest.arch and manifest.built):
                raise CatalogError(f"{path}: no release/arch/built (made by an older "
                                   "bootseed-image; rebuild)")
            build = Build(manifest, directory)
            builds.setdefault(build.key, build)
    return sorted(builds.values(), key=lambda b: (b.product, b.manifest.built))


def version_keys(builds: list[Build]) -> dict[tuple[str, str], str]:
    """``YYYYMMDD`` per build key, ``.N`` added for the later builds of the same day."""
    keys: dict[tuple[str, str], str] = {}
    seen: dict[tuple[str, str], int] = {}
    for build in sorted(builds, key=lambda b: b.manifest.built):
        day = build.manifest.built[:10].replace("-", "")
        count = seen.get((build.product, day), 0)
        seen[(build.product, day)] = count + 1
        keys[build.key] = day if count == 0 else f"{day}.{count}"
    return keys


def make_catalog(directories: list[Path], out: Path, signer: Signer | None = None,
                 now: datetime | None = None) -> Catalog:
    builds = find_builds(directories)
    keys = version_keys(builds)
    updated = format_datetime(now or datetime.now(UTC), usegmt=True)
    products: dict[str, dict[str, Any]] = {}
    for build in builds:
        manifest = build.manifest
        version = keys[build.key]
        rel_dir = f"images/{manifest.release}/{manifest.arch}/{version}"
        items = {}
        for entry in manifest.files:
            source = build.directory / Path(entry.path).name
            items[entry.format] = _publish(source, out, f"{rel_dir}/{source.name}",
                                           entry.format, expected=entry.sha256)
        source_manifest = manifest_path(build.directory / Path(manifest.files[0].path).name)
        items[MANIFEST_FTYPE] = _publish(source_manifest, out,
                                         f"{rel_dir}/{manifest.name}.manifest.json",
                                         MANIFEST_FTYPE)
        product = products.setdefault(build.product, {
            "arch": manifest.arch,
            "release": manifest.release,
            "os": OS_NAME,
            "versions": {},
        })
        product["versions"][version] = {
            "build_name": manifest.name,
            "built": manifest.built,
            "kernel_version": manifest.kernel_version,
            "firmware": manifest.firmware,
            "items": items,
        }
    products_rel = f"{STREAMS_DIR}/{CONTENT_ID}.json"
    products_doc = {"content_id": CONTENT_ID, "datatype": DATATYPE, "format": "products:1.0",
                    "updated": updated, "products": products}
    index_rel = f"{STREAMS_DIR}/index.json"
    index_doc = _index(products_rel, sorted(products), updated)
    _write_json(out / products_rel, products_doc)
    _write_json(out / index_rel, index_doc)
    catalog = Catalog(root=out, index=index_rel, products=products_rel, versions={
        name: sorted(p["versions"], key=_version_order, reverse=True)
        for name, p in products.items()})
    if signer is not None:
        signed_products = _sjson(products_rel)
        _clearsign(signer, json_text(products_doc), out / signed_products)
        signed_index = _sjson(index_rel)
        _clearsign(signer, json_text(_index(signed_products, sorted(products), updated)),
                   out / signed_index)
        catalog.signed = [signed_index, signed_products]
    return catalog


def _version_order(version: str) -> tuple[str, int]:
    day, _, count = version.partition(".")
    return day, int(count or 0)


def _index(products_path: str, product_names: list[str], updated: str) -> dict[str, Any]:
    return {"format": "index:1.0", "updated": updated, "index": {CONTENT_ID: {
        "datatype": DATATYPE, "path": products_path, "format": "products:1.0",
        "updated": updated, "products": product_names}}}


def _publish(source: Path, out: Path, rel: str, ftype: str, expected: str = "") -> dict[str, Any]:
    """Put ``source`` at ``out/rel`` (a hard link when possible) and describe it."""
    if not source.is_file():
        raise CatalogError(f"{source}: named by the build manifest but missing")
    digest = sha256_file(source)
    if expected and digest != expected:
        raise CatalogError(f"{source}: sha256 {digest} is not the manifest's {expected} "
                           "(changed since the build)")
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        # Another filesystem: keep the holes of a sparse image.
        run(["cp", "--sparse=always", str(source), str(target)], timeout=3600)
    return {"ftype": ftype, "path": rel, "size": source.stat().st_size, "sha256": digest}


def _sjson(rel: str) -> str:
    return rel.removesuffix(".json") + ".sjson"


def json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json_text(data))
    tmp.rename(path)


def _clearsign(signer: Signer, text: str, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    run(["gpg", "--batch", "--yes", "--homedir", str(signer.gnupghome), "--local-user",
         signer.key_id, "--clearsign", "--output", str(tmp)], input_text=text, timeout=120)
    tmp.rename(target)
