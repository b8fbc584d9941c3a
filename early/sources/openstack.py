"""OpenStack metadata service: the config drive's files, served over HTTP.

``GET /openstack/`` lists the versions the service speaks (one per line,
``latest`` among them on every current Nova); the newest usable one is read:
``latest`` when listed, else the newest dated version. Under it:
``meta_data.json`` (must exist; ``uuid`` is the instance id), ``user_data``,
``vendor_data.json`` and ``vendor_data2.json`` (the dynamic vendor-data; its
``cloud-init`` member wins over the static file's when both carry one) and
``network_data.json``, kept in OpenStack's format for the network renderer
(``metadata["network-config-format"]``). A 404 on an optional file means the
instance has none.

The service is asked only when the command line names it (``ds=openstack``)
or DMI says the machine is an OpenStack instance: off-cloud nothing is probed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bootseed.contract.seedcache import Seed
from bootseed.early import http
from bootseed.early.sources.base import Context, SourceError, make_seed
from bootseed.early.sources.configdrive import (
    DATED_VERSION,
    normalise_meta_data,
    vendor_data_from_json,
)

SOURCE = "openstack"
DEFAULT_ENDPOINTS = ("http://169.254.169.254",)
VERSIONS_PATH = "/openstack/"
NETWORK_FORMAT = "openstack-network-data"
MAX_LISTING_BYTES = 64 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass
class Service:
    """One metadata endpoint and the version of the API read from it."""

    endpoint: str
    ctx: Context
    version: str = "latest"
    requests: int = 0

    @property
    def base(self) -> str:
        return f"{self.endpoint}/openstack/{self.version}"

    def connect(self) -> bool:
        """Pick the version; False when nothing answers here (no service)."""
        url = self.endpoint + VERSIONS_PATH
        try:
            resp = self._get(url, MAX_LISTING_BYTES)
        except http.FetchError as exc:
            if exc.kind in ("refused", "connect", "timeout", "budget"):
                self.ctx.problem(self.endpoint, f"no metadata service: {exc.message}")
                return False
            raise SourceError(url, exc.message) from exc
        if resp.status == 404:
            self.ctx.problem(url, "not found (404): no OpenStack metadata service here")
            return False
        if resp.status != 200:
            raise SourceError(url, f"HTTP {resp.status}")
        listed = {line.strip().strip("/") for line in
                  resp.body.decode("utf-8", "replace").splitlines()}
        chosen = choose_version(listed)
        if chosen is None:
            raise SourceError(url, "lists no usable version (neither latest nor a dated one)")
        self.version = chosen
        return True

    def get(self, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes | None:
        """The file under the chosen version; None on 404."""
        url = f"{self.base}/{name}"
        try:
            resp = self._get(url, max_bytes)
        except http.FetchError as exc:
            detail = exc.message if not exc.history else (
                f"{exc.message} (earlier attempts: {'; '.join(exc.history)})")
            raise SourceError(url, detail) from exc
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise SourceError(url, f"HTTP {resp.status}")
        return resp.body

    def _get(self, url: str, max_bytes: int) -> http.Response:
        self.requests += 1
        return http.fetch(url, budget=self.ctx.budget, timeout=self.ctx.request_timeout,
                          max_bytes=max_bytes, log=self.ctx.log if self.ctx.debug else None)


def choose_version(listed: set[str]) -> str | None:
    if "latest" in listed:
        return "latest"
    dated = sorted(v for v in listed if DATED_VERSION.match(v))
    return dated[-1] if dated else None


def fetch(ctx: Context, endpoints: list[str]) -> Seed | None:
    """The seed from the first endpoint that answers; None when none does."""
    for endpoint in endpoints:
        service = Service(endpoint.rstrip("/"), ctx)
        if service.connect():
            return _read(ctx, service)
    return None


def _read(ctx: Context, service: Service) -> Seed:
    where = f"{service.base}/meta_data.json"
    md_bytes = service.get("meta_data.json")
    if md_bytes is None:
        raise SourceError(where, f"not found (404) although {service.version} is listed")
    try:
        doc = json.loads(md_bytes)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, too deep
        raise SourceError(where, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not doc.get("uuid"):
        raise SourceError(where, "no uuid (the instance id)")
    payloads = {"meta-data": md_bytes}
    found = {"meta-data": where}
    user_data = service.get("user_data")
    if user_data is not None:
        payloads["user-data"] = user_data
        found["user-data"] = f"{service.base}/user_data"
    vendor = _vendor_data(ctx, service)
    if vendor is not None:
        payloads["vendor-data"], found["vendor-data"] = vendor
    network = service.get("network_data.json")
    if network is not None:
        payloads["network-config"] = network
        found["network-config"] = f"{service.base}/network_data.json"
    metadata = normalise_meta_data(doc)
    if network is not None:
        metadata["network-config-format"] = NETWORK_FORMAT
    metadata["openstack-metadata-service"] = {"endpoint": service.endpoint,
                                              "version": service.version,
                                              "requests": service.requests}
    return make_seed(SOURCE, service.endpoint, metadata, payloads, found)


def _vendor_data(ctx: Context, service: Service) -> tuple[bytes, str] | None:
    """The dynamic vendor-data (``vendor_data2.json``) first, else the static one."""
    for name in ("vendor_data2.json", "vendor_data.json"):
        raw = service.get(name)
        if raw is None:
            continue
        url = f"{service.base}/{name}"
        vendor = vendor_data_from_json(ctx, raw, url)
        if vendor is not None:
            return vendor, url
    return None
