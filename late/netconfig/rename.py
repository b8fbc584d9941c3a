"""Renames (v2 ``set-name``, a v1 ``physical`` entry with ``mac_address``) done in this
boot, not the next.

A ``.link`` file names a NIC when udev handles the NIC's "add" event. On the real
root that event is the coldplug (``systemd-udev-trigger.service``), which runs beside
``bootseed.service`` and is long over when the local stage writes the file; without a
new "add" event the NIC keeps its old name for this boot, and every file that matches
it by its new name (its ``.network``, a bond's or VLAN's reference) misses it. So,
on the running system only, each NIC to be renamed gets that event again. The local
stage runs before networkd starts (``bootseed.service`` is before
``network-pre.target``), so the NICs are down, and udev renames only a NIC that is
down. A rename that still does not happen is a warning: the files stay, and the
name comes with the next boot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bootseed.contract.problems import Level, Problem
from bootseed.late.execute import find_tool, run_captured
from bootseed.late.netconfig.model import Kind, NetworkConfig
from bootseed.late.target import TargetRoot

SYS_NET = Path("/sys/class/net")
UDEV_TIMEOUT_S = 30
WHERE = "network rename"


@dataclass(frozen=True)
class Rename:
    mac: str
    current: str
    new: str


def wanted(config: NetworkConfig) -> dict[str, str]:
    """MAC address (lower case) -> the name its ``.link`` file gives it."""
    return {iface.match_mac.lower(): iface.set_name for iface in config.interfaces
            if iface.kind is Kind.PHYSICAL and iface.match_mac and iface.set_name}


def nics_by_mac(sys_net: Path = SYS_NET) -> dict[str, str]:
    """MAC address (lower case) -> kernel name, for the NICs (devices with a ``device``)."""
    found: dict[str, str] = {}
    try:
        names = sorted(os.listdir(sys_net))
    except OSError:
        return found
    for name in names:
        if not (sys_net / name / "device").exists():
            continue
        try:
            mac = (sys_net / name / "address").read_text().strip().lower()
        except OSError:
            continue
        found.setdefault(mac, name)
    return found


def plan(want: dict[str, str], present: dict[str, str]) -> list[Rename]:
    """The renames still to do: NICs that are here under another name."""
    return [Rename(mac, present[mac], new) for mac, new in sorted(want.items())
            if mac in present and present[mac] != new]


def rename_now(target: TargetRoot, config: NetworkConfig,
               sys_net: Path = SYS_NET) -> list[Problem]:
    """Have udev apply our ``.link`` files to the NICs they rename; warnings for any
    rename that did not happen. Nothing to do for a target that is not this system."""
    if not target.is_host:
        return []
    todo = plan(wanted(config), nics_by_mac(sys_net))
    if not todo:
        return []
    udevadm = find_tool(target, "udevadm")
    if udevadm is None:
        return [Problem(WHERE, f"no udevadm: {_names(todo)} keep their names until the "
                               "next boot", Level.WARNING)]
    # udevd reads .link files again when told to; then one "add" event per NIC.
    run_captured(target, [udevadm, "control", "--reload"], timeout=UDEV_TIMEOUT_S, keep=512)
    run_captured(target, [udevadm, "trigger", "--action=add",
                          *[str(sys_net / r.current) for r in todo]],
                 timeout=UDEV_TIMEOUT_S, keep=512)
    run_captured(target, [udevadm, "settle", f"--timeout={UDEV_TIMEOUT_S}"],
                 timeout=UDEV_TIMEOUT_S + 10, keep=512)
    return unrenamed(todo, nics_by_mac(sys_net))


def unrenamed(todo: list[Rename], present: dict[str, str]) -> list[Problem]:
    """A warning for each rename that the NIC (by its MAC) does not show."""
    return [Problem(WHERE, f"{r.current} ({r.mac}) is still not named {r.new} (udev renames "
                           "only a NIC that is down); its name comes with the next boot",
                    Level.WARNING)
            for r in todo if present.get(r.mac, r.current) != r.new]


def _names(todo: list[Rename]) -> str:
    return ", ".join(f"{r.current} (to be {r.new})" for r in todo)
