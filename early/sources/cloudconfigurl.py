"""``cloud-config-url=``: a cloud-config fetched from the kernel command line.

It plays the part of vendor-data: the platform's defaults, under the user's
own user-data. When no other seed exists it forms a seed by itself.
"""

from __future__ import annotations

import hashlib

from bootseed.contract.seedcache import Seed
from bootseed.early import http
from bootseed.early.sources.base import Context

SOURCE = "cmdline"
MAX_BYTES = 1024 * 1024
HEADER = b"#cloud-config"


def fetch(ctx: Context, url: str) -> bytes | None:
    """The document, or None (with a problem recorded) when unusable."""
    where = f"cloud-config-url={url}"
    try:
        resp = http.fetch(url, budget=ctx.budget, timeout=max(ctx.request_timeout, 5.0),
                          max_bytes=MAX_BYTES, log=ctx.log if ctx.debug else None)
    except http.FetchError as exc:
        ctx.problem(where, exc.message)
        return None
    if not resp.ok:
        ctx.problem(where, f"HTTP {resp.status}")
        return None
    if not resp.body.lstrip().startswith(HEADER):
        ctx.problem(where, "does not start with '#cloud-config'; ignored")
        return None
    return resp.body


def attach(ctx: Context, seed: Seed, url: str, body: bytes, instance_id: str | None) -> Seed:
    """Put the document into ``seed`` as vendor-data (or make a seed of it)."""
    where = f"cloud-config-url={url}"
    if not seed.has_seed:
        iid = instance_id or "iid-cmdline-" + hashlib.sha256(url.encode()).hexdigest()[:12]
        return Seed(source=SOURCE, location=url, instance_id=iid,
                    metadata={"instance-id": iid, "public-keys": []},
                    payloads={"vendor-data": body}, found={"vendor-data": url})
    if "vendor-data" in seed.payloads:
        ctx.problem(where, f"the {seed.source} seed already has vendor-data; this one is ignored")
        return seed
    seed.payloads["vendor-data"] = body
    seed.found["vendor-data"] = url
    return seed
