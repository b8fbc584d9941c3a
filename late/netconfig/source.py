"""Which network config the seed carries: the ``network-config`` payload (cloud-init v1 or
v2 YAML, or OpenStack ``network_data.json`` on a config drive), else an EC2 seed's NIC
metadata. None of them: the fallback applies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.netconfig.ec2 import parse_ec2
from bootseed.late.netconfig.model import Parsed
from bootseed.late.netconfig.openstack import parse_openstack
from bootseed.late.netconfig.v1 import parse_v1
from bootseed.late.netconfig.v2 import parse_v2

OPENSTACK_FORMAT = "openstack-network-data"
PAYLOAD = "network-config"


@dataclass
class SeedNetwork:
    """``parsed`` is None when the seed has no network config; ``disabled`` when its
    network-config itself says ``config: disabled``."""

    parsed: Parsed | None = None
    origin: str = ""
    disabled: bool = False


def from_seed(payloads: Mapping[str, bytes], metadata: Mapping[str, Any],
              source: str) -> SeedNetwork:
    raw = payloads.get(PAYLOAD)
    if raw is not None and raw.strip():
        if metadata.get("network-config-format") == OPENSTACK_FORMAT:
            return _openstack(raw)
        return _cloud_init(raw)
    if source == "ec2" and "meta-data" in payloads:
        try:
            tree = json.loads(payloads["meta-data"])
        except (ValueError, RecursionError):
            return SeedNetwork()  # the seed's reader already reported it
        if isinstance(tree, dict):
            parsed = parse_ec2(tree)
            if parsed.config.interfaces or parsed.problems:
                return SeedNetwork(parsed, "EC2 NIC metadata")
    return SeedNetwork()


def _failed(origin: str, message: str) -> SeedNetwork:
    return SeedNetwork(Parsed(problems=[Problem(origin, message, Level.ERROR)]), origin)


def _openstack(raw: bytes) -> SeedNetwork:
    origin = "network_data.json"
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return _failed(origin, f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return _failed(origin, "must be a JSON object")
    return SeedNetwork(parse_openstack(doc, origin), origin)


def _cloud_init(raw: bytes) -> SeedNetwork:
    from bootseed.early.boundedyaml import load_bounded

    origin = PAYLOAD
    try:
        doc = load_bounded(raw.decode("utf-8"))
    except Exception as exc:  # YAML, limits, UTF-8: all mean "unusable", named below
        return _failed(origin, f"not valid YAML: {type(exc).__name__}: {exc}")
    if doc is None:
        return SeedNetwork()
    if isinstance(doc, dict) and isinstance(doc.get("network"), dict):
        doc = doc["network"]
    if not isinstance(doc, dict):
        return _failed(origin, "must be a mapping")
    if doc.get("config") == "disabled":
        return SeedNetwork(origin=origin, disabled=True)
    version = doc.get("version")
    if version == 1:
        return SeedNetwork(parse_v1(doc, origin), origin)
    if version == 2:
        return SeedNetwork(parse_v2(doc, origin), origin)
    return _failed(f"{origin}: version", f"{version!r} is not 1 or 2")
