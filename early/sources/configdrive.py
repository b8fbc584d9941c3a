"""OpenStack config drive v2: a filesystem labelled ``config-2``.

Reads ``openstack/latest/`` (or the newest dated version when ``latest`` is
missing): ``meta_data.json`` (``uuid`` is the instance id), ``user_data``,
``vendor_data.json`` and ``network_data.json``. The network data keeps its
OpenStack format; ``metadata["network-config-format"]`` says so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bootseed.contract.seedcache import Seed
from bootseed.early.sources.base import Context, SourceError, make_seed
from bootseed.early.sources.metadata import normalise

SOURCE = "configdrive"
DISC_LABELS = ("config-2",)
MAX_FILE_BYTES = 16 * 1024 * 1024
DATED_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def version_dir(mountpoint: Path) -> Path | None:
    base = mountpoint / "openstack"
    if (base / "latest" / "meta_data.json").is_file():
        return base / "latest"
    try:
        dated = sorted(p for p in base.iterdir() if DATED_VERSION.match(p.name)
                       and (p / "meta_data.json").is_file())
    except OSError:
        return None
    return dated[-1] if dated else None


def _read(path: Path, where: str) -> bytes | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SourceError(where, f"larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError(where, f"unreadable: {exc.strerror or exc}") from exc


def from_mount(ctx: Context, mountpoint: Path, device: str) -> Seed | None:
    vdir = version_dir(mountpoint)
    if vdir is None:
        ctx.problem(device, "labelled config-2 but has no openstack/*/meta_data.json")
        return None
    rel = vdir.relative_to(mountpoint)
    where = f"{device}:{rel}"
    md_bytes = _read(vdir / "meta_data.json", f"{where}/meta_data.json") or b""
    try:
        doc = json.loads(md_bytes)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, too deep
        raise SourceError(f"{where}/meta_data.json", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not doc.get("uuid"):
        raise SourceError(f"{where}/meta_data.json", "no uuid (the instance id)")
    payloads = {"meta-data": md_bytes}
    found = {"meta-data": f"{where}/meta_data.json"}
    user_data = _read(vdir / "user_data", f"{where}/user_data")
    if user_data is not None:
        payloads["user-data"] = user_data
        found["user-data"] = f"{where}/user_data"
    vendor = _vendor_data_file(ctx, vdir / "vendor_data.json", f"{where}/vendor_data.json")
    if vendor is not None:
        payloads["vendor-data"] = vendor
        found["vendor-data"] = f"{where}/vendor_data.json"
    network = _read(vdir / "network_data.json", f"{where}/network_data.json")
    if network is not None:
        payloads["network-config"] = network
        found["network-config"] = f"{where}/network_data.json"
    metadata = normalise_meta_data(doc)
    if network is not None:
        metadata["network-config-format"] = "openstack-network-data"
    return make_seed(SOURCE, device, metadata, payloads, found)


def _vendor_data_file(ctx: Context, path: Path, where: str) -> bytes | None:
    data = _read(path, where)
    return None if data is None else vendor_data_from_json(ctx, data, where)


def vendor_data_from_json(ctx: Context, data: bytes, where: str) -> bytes | None:
    """``vendor_data.json`` (and the metadata service's ``vendor_data2.json``) wrap the
    vendor-data: a JSON string, or an object whose ``cloud-init`` member holds it."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, too deep
        ctx.problem(where, f"not JSON, vendor-data ignored: {exc}")
        return None
    if isinstance(doc, dict):
        doc = doc.get("cloud-init")
    if doc is None or doc == {}:
        return None
    if isinstance(doc, str):
        return doc.encode("utf-8")
    ctx.problem(where, f"vendor-data of type {type(doc).__name__}, expected a string; ignored")
    return None


def normalise_meta_data(doc: dict[str, Any]) -> dict[str, Any]:
    """OpenStack ``meta_data.json`` (config drive and metadata service alike) in the
    seed's metadata keys; ``uuid`` is the instance id."""
    raw: dict[str, Any] = {
        "instance-id": doc.get("uuid"),
        "public-keys": doc.get("public_keys") or {},
    }
    if doc.get("hostname"):
        raw["local-hostname"] = doc["hostname"]
    if doc.get("launch_index") is not None:
        raw["launch-index"] = doc["launch_index"]
    metadata = normalise(raw)
    for key, out in (("availability_zone", "availability-zone"), ("name", "name"),
                     ("project_id", "project-id")):
        if doc.get(key):
            metadata[out] = doc[key]
    return metadata
