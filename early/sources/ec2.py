"""EC2 instance metadata service (IMDS), token protocol first.

IMDSv2: ``PUT /latest/api/token`` with a TTL header returns a token that goes
on every request; a 401 means it expired, so it is fetched again once. A 403
on the token request means tokens are refused (IMDS disabled, or the request
looked forwarded) and the source stops there: falling back to IMDSv1 would
defeat the point. IMDSv1 is used only when the token endpoint does not exist
(404/405), as on EC2-compatible clouds that never implemented it.

Credentials subtrees are never crawled, so role secrets cannot land in the
seed cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bootseed.contract.seedcache import Seed
from bootseed.early import http
from bootseed.early.sources.base import Context, SourceError, make_seed
from bootseed.early.sources.metadata import normalise

SOURCE = "ec2"
DEFAULT_ENDPOINTS = ("http://169.254.169.254", "http://[fd00:ec2::254]")
TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
SKIP_SUBTREES = ("iam/security-credentials/", "identity-credentials/")
MAX_ENTRIES = 512
MAX_DEPTH = 8
MAX_LEAF_BYTES = 64 * 1024
MAX_USER_DATA_BYTES = 16 * 1024 * 1024


class TokenRefused(SourceError):
    """The token request got a 403: stop, do not fall back to IMDSv1."""


@dataclass
class Imds:
    """One metadata endpoint and the session (token) used against it."""

    endpoint: str
    ctx: Context
    token_ttl: int = 21600
    api_version: str = "latest"
    token: str | None = None
    version: str = "v2"
    requests: int = 0
    skipped: list[str] = field(default_factory=list)

    def connect(self) -> bool:
        """Start a session; False when nothing answers at this endpoint."""
        try:
            self._new_token()
        except http.FetchError as exc:
            if exc.kind in ("refused", "connect", "timeout", "budget"):
                self.ctx.problem(self.endpoint, f"no metadata service: {exc.message}")
                return False
            raise SourceError(self.endpoint + TOKEN_PATH, str(exc.message)) from exc
        return True

    def _new_token(self) -> None:
        self.requests += 1
        resp = http.fetch(
            self.endpoint + TOKEN_PATH, budget=self.ctx.budget, method="PUT",
            headers={TTL_HEADER: str(self.token_ttl)}, timeout=self.ctx.request_timeout,
            max_bytes=4096, log=self.ctx.log if self.ctx.debug else None,
        )
        if resp.status == 200:
            token = resp.body.decode("ascii", "replace").strip()
            if not token:
                raise SourceError(self.endpoint + TOKEN_PATH, "empty token")
            self.token, self.version = token, "v2"
        elif resp.status in (404, 405):
            self.token, self.version = None, "v1"
            self.ctx.log(f"{self.endpoint}: no token endpoint ({resp.status}); using IMDSv1")
        elif resp.status == 403:
            raise TokenRefused(self.endpoint + TOKEN_PATH,
                               "token request forbidden (403): IMDS refuses tokens here; "
                               "not falling back to IMDSv1")
        else:
            raise SourceError(self.endpoint + TOKEN_PATH,
                              f"token request answered HTTP {resp.status}")

    def get(self, path: str, max_bytes: int = MAX_LEAF_BYTES) -> bytes | None:
        """The body at ``/<version>/<path>``; None on 404."""
        url = f"{self.endpoint}/{self.api_version}/{path}"
        for refreshed in (False, True):
            headers = {TOKEN_HEADER: self.token} if self.token else {}
            self.requests += 1
            try:
                resp = http.fetch(url, budget=self.ctx.budget, headers=headers,
                                  timeout=self.ctx.request_timeout, max_bytes=max_bytes,
                                  log=self.ctx.log if self.ctx.debug else None)
            except http.FetchError as exc:
                raise SourceError(url, exc.message if not exc.history else
                                  f"{exc.message} (earlier attempts: "
                                  f"{'; '.join(exc.history)})") from exc
            if resp.status == 401 and self.version == "v2" and not refreshed:
                self.ctx.log(f"{url}: 401, token expired; fetching a new one")
                try:
                    self._new_token()
                except http.FetchError as exc:
                    raise SourceError(self.endpoint + TOKEN_PATH, exc.message) from exc
                continue
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise SourceError(url, f"HTTP {resp.status}")
            return resp.body
        raise SourceError(url, "HTTP 401 even with a fresh token")

    def crawl(self, path: str = "meta-data/", depth: int = 0) -> dict[str, Any]:
        """The metadata tree under ``path`` as nested dicts of strings."""
        if depth > MAX_DEPTH:
            raise SourceError(f"{self.endpoint}/{self.api_version}/{path}",
                              f"metadata deeper than {MAX_DEPTH} levels")
        body = self.get(path)
        if body is None:
            return {}
        tree: dict[str, Any] = {}
        for entry in body.decode("utf-8", "replace").splitlines():
            entry = entry.strip()
            if not entry or entry.startswith("/") or ".." in entry:
                continue
            if self.requests > MAX_ENTRIES:
                raise SourceError(f"{self.endpoint}/{self.api_version}/meta-data/",
                                  f"more than {MAX_ENTRIES} entries; metadata crawl stopped")
            child = path + entry
            if any(child.startswith("meta-data/" + skip) for skip in SKIP_SUBTREES):
                self.skipped.append(child)
                continue
            if path == "meta-data/public-keys/" and "=" in entry:
                # "0=keyname": the key material lives under "0/".
                index, _, name = entry.partition("=")
                tree[name or index] = self.crawl(f"{path}{index}/", depth + 1)
            elif entry.endswith("/"):
                tree[entry[:-1]] = self.crawl(child, depth + 1)
            else:
                leaf = self.get(child)
                if leaf is not None:
                    tree[entry] = leaf.decode("utf-8", "replace")
        return tree


def fetch(ctx: Context, endpoints: list[str], token_ttl: int = 21600,
          api_version: str = "latest") -> Seed | None:
    """The seed from the first endpoint that answers; None when none does."""
    for endpoint in endpoints:
        imds = Imds(endpoint.rstrip("/"), ctx, token_ttl=token_ttl, api_version=api_version)
        if not imds.connect():
            continue
        return _read(ctx, imds)
    return None


def _read(ctx: Context, imds: Imds) -> Seed:
    tree = imds.crawl()
    if not tree:
        raise SourceError(f"{imds.endpoint}/{imds.api_version}/meta-data/",
                          "the metadata service answered but meta-data is empty")
    payloads = {"meta-data": json.dumps(tree, indent=1, sort_keys=True).encode("utf-8")}
    base = f"{imds.endpoint}/{imds.api_version}"
    found = {"meta-data": f"{base}/meta-data/"}
    user_data = imds.get("user-data", max_bytes=MAX_USER_DATA_BYTES)
    if user_data is not None:
        payloads["user-data"] = user_data
        found["user-data"] = f"{base}/user-data"
    identity: dict[str, Any] = {}
    doc = imds.get("dynamic/instance-identity/document")
    if doc is not None:
        try:
            parsed = json.loads(doc)
            identity = parsed if isinstance(parsed, dict) else {}
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, too deep
            ctx.problem(f"{base}/dynamic/instance-identity/document", f"not JSON: {exc}")
    metadata = _normalise(tree, identity)
    metadata["imds"] = {"endpoint": imds.endpoint, "version": imds.version,
                        "requests": imds.requests, "skipped": imds.skipped}
    if not metadata.get("instance-id"):
        raise SourceError(f"{base}/meta-data/instance-id", "missing")
    return make_seed(SOURCE, imds.endpoint, metadata, payloads, found)


def _normalise(tree: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    found_placement = tree.get("placement")
    placement: dict[str, Any] = found_placement if isinstance(found_placement, dict) else {}
    keys_tree = tree.get("public-keys")
    metadata = normalise({
        "instance-id": tree.get("instance-id") or identity.get("instanceId"),
        "local-hostname": tree.get("local-hostname") or tree.get("hostname"),
        "public-keys": keys_tree if isinstance(keys_tree, dict) else {},
        "ami-launch-index": tree.get("ami-launch-index"),
    })
    metadata.pop("ami-launch-index", None)
    if not metadata.get("local-hostname"):
        metadata.pop("local-hostname", None)
    extras = {
        "region": identity.get("region") or placement.get("region"),
        "availability-zone": placement.get("availability-zone")
        or identity.get("availabilityZone"),
        "instance-type": tree.get("instance-type") or identity.get("instanceType"),
        "ami-id": tree.get("ami-id") or identity.get("imageId"),
    }
    metadata.update({k: v for k, v in extras.items() if v})
    # The mounts module maps ephemeral0/swap/ebsN to guest devices with it.
    mapping = tree.get("block-device-mapping")
    if isinstance(mapping, dict):
        devices = {k: v.strip() for k, v in mapping.items() if isinstance(v, str) and v.strip()}
        if devices:
            metadata["block-device-mapping"] = devices
    if identity:
        metadata["instance-identity"] = identity
    return metadata
