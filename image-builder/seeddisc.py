"""Seed discs as image files: NoCloud ``cidata`` (ISO or vfat), OVF ISO transport,
OpenStack config drive (``config-2``).

ISOs are written with pycdlib (Rock Ridge and Joliet, so Linux sees the real
file names); vfat images with ``mkfs.vfat`` and mtools, without mounting.
File maps are ``{"path/in/disc": bytes}``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

OVF_NS = "http://schemas.dmtf.org/ovf/environment/1"


class SeedDiscError(Exception):
    """A disc could not be built; the message names the file or tool."""


def files_from_dir(directory: str | Path) -> dict[str, bytes]:
    """Every regular file under ``directory``, keyed by its relative POSIX path."""
    base = Path(directory)
    if not base.is_dir():
        raise SeedDiscError(f"{base}: not a directory")
    return {p.relative_to(base).as_posix(): p.read_bytes()
            for p in sorted(base.rglob("*")) if p.is_file()}


def _iso_component(name: str, is_dir: bool) -> str:
    """An ISO9660 level-3 name (upper-case d-characters); Rock Ridge keeps the real one."""
    clean = re.sub(r"[^A-Z0-9_.]", "_", name.upper())
    if is_dir:
        return clean.replace(".", "_")[:31]
    stem, dot, ext = clean.rpartition(".")
    if not dot:
        stem, ext = clean, ""
    return f"{stem.replace('.', '_')[:30 - len(ext)]}.{ext};1"


def make_iso(out: str | Path, files: dict[str, bytes], label: str) -> Path:
    """An ISO9660 image with Rock Ridge + Joliet holding ``files``, volume ``label``."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=label, rock_ridge="1.09", joliet=3)
    made_dirs: set[str] = set()
    used: dict[str, str] = {}
    try:
        for rel in sorted(files):
            parts = [p for p in rel.split("/") if p]
            if not parts or any(p in (".", "..") for p in parts):
                raise SeedDiscError(f"{rel!r}: not a usable path inside a disc")
            iso_path = ""
            joliet = ""
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                iso_path += "/" + _iso_component(part, is_dir=not last)
                joliet += "/" + part
                if iso_path in used and used[iso_path] != joliet:
                    raise SeedDiscError(f"{rel!r} and {used[iso_path]!r} share the ISO9660 "
                                        f"name {iso_path}")
                used[iso_path] = joliet
                if not last and iso_path not in made_dirs:
                    iso.add_directory(iso_path, rr_name=part, joliet_path=joliet)
                    made_dirs.add(iso_path)
            data = files[rel]
            iso.add_fp(io.BytesIO(data), len(data), iso_path, rr_name=parts[-1],
                       joliet_path=joliet)
        target = Path(out)
        iso.write(str(target))
    finally:
        iso.close()
    return target


def make_cidata_iso(out: str | Path, files: dict[str, bytes], label: str = "cidata") -> Path:
    """A NoCloud seed ISO (``user-data``, ``meta-data``, optional others)."""
    return make_iso(out, files, label)


def make_cidata_vfat(out: str | Path, files: dict[str, bytes], label: str = "CIDATA") -> Path:
    """A NoCloud seed as a vfat image (labels on vfat are upper case)."""
    target = Path(out)
    payload_kib = sum(len(d) for d in files.values()) // 1024
    blocks = max(2048, payload_kib * 2 + 1024)
    target.unlink(missing_ok=True)
    _run(["mkfs.vfat", "-n", label.upper(), "-C", str(target), str(blocks)])
    made: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="seeddisc-") as tmp:
        for index, rel in enumerate(sorted(files)):
            parts = [p for p in rel.split("/") if p]
            if not parts or any(p in (".", "..") for p in parts):
                raise SeedDiscError(f"{rel!r}: not a usable path inside a disc")
            for depth in range(1, len(parts)):
                sub = "/".join(parts[:depth])
                if sub not in made:
                    _run(["mmd", "-i", str(target), f"::/{sub}"])
                    made.add(sub)
            staged = Path(tmp, str(index))
            staged.write_bytes(files[rel])
            _run(["mcopy", "-i", str(target), str(staged), f"::/{'/'.join(parts)}"])
    return target


def build_ovf_env(properties: dict[str, str], user_data: bytes | None = None,
                  env_id: str = "bootseed") -> bytes:
    """An ``ovf-env.xml`` with one ``Property`` per entry; ``user_data`` is base64-encoded
    into the ``user-data`` property as VMware-style transports do."""
    props = dict(properties)
    if user_data is not None:
        props["user-data"] = base64.b64encode(user_data).decode("ascii")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<Environment xmlns="{OVF_NS}" xmlns:oe="{OVF_NS}"',
        '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
        f"    oe:id={quoteattr(env_id)}>",
        "  <PlatformSection>",
        "    <Kind>bootseed seed disc</Kind>",
        "  </PlatformSection>",
        "  <PropertySection>",
    ]
    for key, value in props.items():
        lines.append(f"    <Property oe:key={quoteattr(key)} oe:value={quoteattr(value)}/>")
    lines += ["  </PropertySection>", "</Environment>", ""]
    return "\n".join(lines).encode("utf-8")


def make_ovf_iso(out: str | Path, ovf_env_xml: bytes, name: str = "ovf-env.xml",
                 label: str = "OVF ENV") -> Path:
    """The OVF ISO transport: a disc holding the environment document."""
    return make_iso(out, {name: ovf_env_xml}, label)


def config_drive_files(meta_data: dict[str, Any], user_data: bytes | None = None,
                       vendor_data: Any = None,
                       network_data: dict[str, Any] | None = None) -> dict[str, bytes]:
    base = "openstack/latest"
    files = {f"{base}/meta_data.json": json.dumps(meta_data, indent=2).encode()}
    if user_data is not None:
        files[f"{base}/user_data"] = user_data
    if vendor_data is not None:
        files[f"{base}/vendor_data.json"] = json.dumps(vendor_data, indent=2).encode()
    if network_data is not None:
        files[f"{base}/network_data.json"] = json.dumps(network_data, indent=2).encode()
    return files


def make_config_drive_iso(out: str | Path, meta_data: dict[str, Any],
                          user_data: bytes | None = None, vendor_data: Any = None,
                          network_data: dict[str, Any] | None = None,
                          label: str = "config-2") -> Path:
    """An OpenStack config drive v2 ISO (``openstack/latest/...``)."""
    if "uuid" not in meta_data:
        raise SeedDiscError("meta_data needs a 'uuid' (the instance id)")
    files = config_drive_files(meta_data, user_data, vendor_data, network_data)
    return make_iso(out, files, label)


def extract_disc(source: str | Path, dest: str | Path) -> Path:
    """Copy every file of an ISO9660 or vfat image (or device) into ``dest``, with
    the names Linux would show (Rock Ridge, then Joliet, for ISOs; long names on vfat).

    For looking inside discs where the kernel cannot mount them (e.g. a host
    kernel without iso9660/vfat); the boot itself always mounts.
    """
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(source))
    except PyCdlibException:
        _run(["mcopy", "-s", "-n", "-i", str(source), "::/*", str(target)])
        return target
    try:
        facade_key = "rr_path" if iso.has_rock_ridge() else (
            "joliet_path" if iso.has_joliet() else "iso_path")
        for dirpath, dirs, names in iso.walk(**{facade_key: "/"}):
            rel_dir = dirpath.lstrip("/")
            for name in dirs:
                (target / rel_dir / name).mkdir(parents=True, exist_ok=True)
            for name in names:
                shown = name if facade_key != "iso_path" else name.split(";")[0].lower()
                out = target / rel_dir / shown
                out.parent.mkdir(parents=True, exist_ok=True)
                iso_name = f"{dirpath.rstrip('/')}/{name}"
                iso.get_file_from_iso(str(out), **{facade_key: iso_name})
    finally:
        iso.close()
    return target


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError as exc:
        raise SeedDiscError(f"{cmd[0]}: not installed (dosfstools/mtools)") from exc
    if proc.returncode != 0:
        raise SeedDiscError(f"{' '.join(cmd)}: {(proc.stderr or proc.stdout).strip()}")
