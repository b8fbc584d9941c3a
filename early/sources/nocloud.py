"""NoCloud: a seed directory, a ``cidata`` disc, or a seed URL.

All three carry the same files (``meta-data``, ``user-data``, ``vendor-data``,
``network-config``). A seed URL follows cloud-init's rules: ``%s`` in the URL
is replaced by the file name; otherwise the file name is appended verbatim,
so a directory URL needs its trailing ``/`` (``http://h/seed/``) and a prefix
URL (``http://h/node1-``) yields ``node1-meta-data``.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from bootseed.contract.cmdline import SeedParams
from bootseed.contract.seedcache import PAYLOAD_NAMES, Seed
from bootseed.early import http
from bootseed.early.sources.base import Context, SourceError, make_seed
from bootseed.early.sources.metadata import MetadataError, normalise, parse_meta_data

SOURCE = "nocloud"
SEED_DIRS = (
    "var/lib/bootseed/seed/nocloud",
    "var/lib/bootseed/seed/nocloud-net",
    # cloud-init's locations, so images prepared for it keep working.
    "var/lib/cloud/seed/nocloud",
    "var/lib/cloud/seed/nocloud-net",
)
DISC_LABELS = ("cidata",)
DEFAULT_INSTANCE_ID = "iid-nocloud"
MAX_FILE_BYTES = 16 * 1024 * 1024


def seed_file_urls(base: str) -> dict[str, str]:
    """The URL of each seed file under ``base`` (``%s`` substitution or appending)."""
    if "%s" in base:
        return {name: base.replace("%s", name) for name in PAYLOAD_NAMES}
    return {name: base + name for name in PAYLOAD_NAMES}


def read_directory(directory: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """The seed files in ``directory`` (names matched ignoring case, as vfat and
    plain ISO9660 discs may change it), and where each came from."""
    try:
        entries = {entry.name.lower(): entry for entry in directory.iterdir()}
    except OSError:
        return {}, {}
    payloads: dict[str, bytes] = {}
    found: dict[str, str] = {}
    for name in PAYLOAD_NAMES:
        entry = entries.get(name) or entries.get(name.replace("-", "_"))
        if entry is None or not entry.is_file():
            continue
        try:
            size = entry.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SourceError(str(entry), f"{size} bytes, limit {MAX_FILE_BYTES}")
            payloads[name] = entry.read_bytes()
        except OSError as exc:
            raise SourceError(str(entry), f"unreadable: {exc.strerror or exc}") from exc
        found[name] = str(entry)
    return payloads, found


def from_directory(ctx: Context, directory: Path, args: SeedParams,
                   location: str | None = None) -> Seed | None:
    """A seed from a directory with ``meta-data`` and/or ``user-data``; None when
    the directory holds neither."""
    payloads, found = read_directory(directory)
    if "meta-data" not in payloads and "user-data" not in payloads:
        return None
    if location is not None:
        # A disc's mount point is gone after the read: name the device instead.
        found = {name: f"{location}:{Path(path).name}" for name, path in found.items()}
    where = location or str(directory)
    raw = _parse(ctx, found.get("meta-data", where), payloads.get("meta-data", b""))
    seedfrom = raw.get("seedfrom")
    if isinstance(seedfrom, str) and seedfrom:
        # The local seed redirects to a URL: the URL's files win, local ones fill gaps.
        remote = from_url(ctx, seedfrom, args, local_meta=_without(raw, "seedfrom"))
        for name, data in payloads.items():
            if name not in remote.payloads:
                remote.payloads[name] = data
                remote.found[name] = found[name]
        remote.location = f"{where} -> {remote.location}"
        return remote
    metadata = normalise(raw)
    _apply_cmdline(ctx, metadata, args)
    return make_seed(SOURCE, where, metadata, payloads, found)


def from_url(ctx: Context, base: str, args: SeedParams,
             local_meta: dict[str, Any] | None = None) -> Seed:
    """Fetch the seed files from ``base``; ``meta-data`` must exist, the rest may not.

    ``local_meta`` (from the seed that pointed here) overrides the fetched keys.
    """
    urls = seed_file_urls(base)
    payloads: dict[str, bytes] = {}
    found: dict[str, str] = {}
    # meta-data first: it is the one that must exist, so a wrong URL fails on it.
    for name in ("meta-data", *(n for n in PAYLOAD_NAMES if n != "meta-data")):
        url = urls[name]
        try:
            resp = http.fetch(url, budget=ctx.budget, timeout=max(ctx.request_timeout, 5.0),
                              max_bytes=MAX_FILE_BYTES, log=ctx.log if ctx.debug else None)
        except http.FetchError as exc:
            raise SourceError(url, _fetch_reason(exc)) from exc
        if resp.status == 404 and name == "meta-data":
            raise SourceError(url, "not found (404)" + _slash_hint(base))
        if resp.status == 404:
            continue
        if not resp.ok:
            raise SourceError(url, f"HTTP {resp.status}")
        payloads[name] = resp.body
        found[name] = url
    raw = _parse(ctx, found["meta-data"], payloads["meta-data"])
    metadata = normalise({**raw, **(local_meta or {})})
    _apply_cmdline(ctx, metadata, args)
    return make_seed(SOURCE, base, metadata, payloads, found)


def _fetch_reason(exc: http.FetchError) -> str:
    detail = exc.message
    if exc.history:
        detail += f" (earlier attempts: {'; '.join(exc.history)})"
    return detail


def _slash_hint(base: str) -> str:
    if "%s" in base or base.endswith("/"):
        return ""
    path = urllib.parse.urlsplit(base).path
    return (f"; the seed URL does not end in '/', so file names are appended to "
            f"{path.rsplit('/', 1)[-1]!r} as a prefix (cloud-init's rule): add a trailing '/'"
            f" if it names a directory")


def _parse(ctx: Context, where: str, data: bytes) -> dict[str, Any]:
    try:
        return parse_meta_data(data)
    except (MetadataError, UnicodeDecodeError) as exc:
        ctx.problem(where, f"meta-data unusable, ignored: {exc}")
        return {}


def _without(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != key}


def _apply_cmdline(ctx: Context, metadata: dict[str, Any], args: SeedParams) -> None:
    """``i=`` and ``h=`` from the command line override meta-data (cloud-init's rule)."""
    if args.instance_id:
        metadata["instance-id"] = args.instance_id
    if args.hostname:
        metadata["local-hostname"] = args.hostname
    if not metadata.get("instance-id"):
        ctx.problem("meta-data", f"no instance-id in meta-data or on the command line; "
                                 f"using {DEFAULT_INSTANCE_ID!r}")
        metadata["instance-id"] = DEFAULT_INSTANCE_ID
