"""The switches that turn network configuration off, each named when it does.

- the kernel command line: ``network-config=disabled``;
- cloud-config ``network: {config: disabled}`` (bootseed's system config
  ``/etc/bootseed/bootseed.cfg`` and ``bootseed.cfg.d/*.cfg``, vendor-data, user-data:
  the processed config the module gets);
- the same key in the target's ``/etc/cloud/cloud.cfg`` or ``/etc/cloud/cloud.cfg.d/*.cfg``,
  where images prepared for cloud-init say it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from bootseed.contract.cmdline import KernelParams
from bootseed.late.target import TargetPathError, TargetRoot

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_DIR = "/etc/cloud/cloud.cfg.d"


def says_disabled(cfg: Mapping[str, Any]) -> bool:
    network = cfg.get("network")
    return isinstance(network, dict) and network.get("config") == "disabled"


def disabled_by(cfg: Mapping[str, Any], target: TargetRoot,
                kernel: KernelParams | None) -> str | None:
    """Where network configuration is turned off, or None."""
    if kernel is not None and kernel.network_config_disabled:
        return "network-config=disabled on the kernel command line"
    if says_disabled(cfg):
        return "network: {config: disabled} in cloud-config"
    for path in cloud_cfg_files(target):
        if says_disabled(_load(target, path)):
            return f"network: {{config: disabled}} in {path}"
    return None


def cloud_cfg_files(target: TargetRoot) -> list[str]:
    files = [CLOUD_CFG]
    try:
        with target.open_dir(CLOUD_CFG_DIR) as fd:
            files += [f"{CLOUD_CFG_DIR}/{name}" for name in sorted(os.listdir(fd))
                      if name.endswith(".cfg")]
    except (OSError, TargetPathError):
        pass
    return files


def _load(target: TargetRoot, path: str) -> Mapping[str, Any]:
    """A cloud.cfg file's mapping; unreadable or not YAML counts as saying nothing."""
    from bootseed.early.boundedyaml import load_bounded

    try:
        doc = load_bounded(target.read_text(path))
    except Exception:  # not ours to judge: cloud-init's files only matter for this one key
        return {}
    return doc if isinstance(doc, dict) else {}
