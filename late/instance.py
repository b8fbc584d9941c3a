"""Instance data: what the seed says about this machine, in cloud-init's
``instance-data.json`` shape (``v1`` standard keys, ``ds.meta_data``,
``merged_cfg``).

Two files in the run directory: ``instance-data-sensitive.json`` (0600, full)
and ``instance-data.json`` (0644) with secrets and the merged config removed,
which is what ``bootseed query`` shows to a non-root user.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.seedcache import Seed
from bootseed.late import __version__, jsonout
from bootseed.late.model import InstanceInfo
from bootseed.late.redact import REDACTED, Redactor

PUBLIC_NAME = "instance-data.json"
SENSITIVE_NAME = "instance-data-sensitive.json"
FALLBACK_PREFIX = "iid-bootseed-"
# Keys whose whole value the redacted view hides, as dotted paths.
SENSITIVE_KEYS = ("merged_cfg", "ds/meta_data/security-credentials", "ds/user_data")


def instance_id_of(seed: Seed) -> tuple[str, bool]:
    """``(instance_id, from_seed)``; a seed without one gets a stable per-source id."""
    iid = seed.instance_id or seed.metadata.get("instance-id")
    if isinstance(iid, str) and iid.strip():
        return iid.strip(), True
    return f"{FALLBACK_PREFIX}{seed.source}", False


def instance_info(seed: Seed) -> InstanceInfo:
    meta = seed.metadata
    keys = meta.get("public-keys") or []
    if isinstance(keys, str):
        keys = [k for k in keys.splitlines() if k.strip()]
    elif isinstance(keys, dict):  # some sources key them by name
        keys = [str(v) for v in keys.values()]
    launch = meta.get("launch-index")
    try:
        launch_index = int(launch) if launch is not None else None
    except (TypeError, ValueError):
        launch_index = None
    hostname = meta.get("local-hostname") or meta.get("hostname")
    return InstanceInfo(
        instance_id=instance_id_of(seed)[0],
        local_hostname=str(hostname) if hostname else None,
        public_keys=[str(k) for k in keys],
        launch_index=launch_index,
        metadata=dict(meta),
        source=seed.source,
    )


def build_instance_data(
    seed: Seed, info: InstanceInfo, merged_cfg: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta = seed.metadata
    raw_placement = meta.get("placement")
    placement: dict[str, Any] = raw_placement if isinstance(raw_placement, dict) else {}
    zone = meta.get("availability-zone") or placement.get("availability-zone")
    region = meta.get("region") or placement.get("region")
    # os.uname, not platform: the platform module costs the first interpreter its import.
    uname = os.uname()
    return {
        "v1": {
            "instance_id": info.instance_id,
            "local_hostname": info.local_hostname,
            "public_ssh_keys": info.public_keys,
            "launch_index": info.launch_index,
            "cloud_name": seed.source.lower(),
            "platform": seed.source.lower(),
            "subplatform": seed.location,
            "region": region,
            "availability_zone": zone,
            "kernel_release": uname.release,
            "machine": uname.machine,
            "python_version": "{}.{}.{}".format(*sys.version_info[:3]),
            "bootseed_version": __version__,
        },
        "ds": {"meta_data": meta},
        "merged_cfg": merged_cfg if merged_cfg is not None else {},
        "sensitive_keys": list(SENSITIVE_KEYS),
    }


def redacted_view(data: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    view = redactor.data(data)
    for dotted in SENSITIVE_KEYS:
        *parents, last = dotted.split("/")
        node: Any = view
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = REDACTED
    return view


def write_instance_data(run_dir: Path, data: dict[str, Any],
                        redactor: Redactor) -> tuple[str, str]:
    """Write both files; returns their texts ``(sensitive, public)``."""
    run_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    sensitive = jsonout.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(run_dir / SENSITIVE_NAME, sensitive, mode=0o600)
    public = jsonout.dumps(redacted_view(data, redactor), indent=2, sort_keys=True) + "\n"
    atomic_write(run_dir / PUBLIC_NAME, public, mode=0o644)
    return sensitive, public


def read_instance_data(run_dir: Path, sensitive: bool | None = None) -> dict[str, Any]:
    """The sensitive file for root (when readable), else the redacted one."""
    if sensitive is None:
        sensitive = os.geteuid() == 0
    names = (SENSITIVE_NAME, PUBLIC_NAME) if sensitive else (PUBLIC_NAME,)
    for name in names:
        try:
            doc = json.loads((run_dir / name).read_text(encoding="utf-8"))
        except (FileNotFoundError, PermissionError):
            continue
        if isinstance(doc, dict):
            return doc
    raise FileNotFoundError(f"no instance data in {run_dir}")
