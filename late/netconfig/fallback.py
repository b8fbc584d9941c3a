"""No network config in the seed: DHCPv4 on one NIC, found by its MAC.

Which NIC: Ethernet devices of the target's ``/sys/class/net`` in kernel index
order (``lo``, wireless and bridges left out). On the running system (a host
target) the first with carrier; none has carrier before networkd brings links up,
so then the first one. In a ``--root`` target the first one its sysfs shows.

Nothing is written when systemd-networkd is not enabled in the target: the image
then brings its NICs up with another tool. Nor when a ``.network`` file the target already has
(``/etc``, ``/run``, ``/usr/lib``, ``/lib`` ``systemd/network``; ours left out)
matches that NIC: the image's own configuration wins. A ``[Match]`` condition we
cannot evaluate counts as matching, so an image file is never overridden by guess:
the boot lab's ``80-bootseed-lab.network`` (``KernelCommandLine=bootseed.lab=1``)
and the image default ``90-bootseed-default.network`` (``Name=en* eth*``) both keep
their NIC.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from bootseed.contract.cmdline import KernelParams
from bootseed.contract.problems import Level
from bootseed.late.netconfig.model import Interface, NetworkConfig
from bootseed.late.netconfig.networkd import PREFIX
from bootseed.late.target import TargetPathError, TargetRoot

SYS_CLASS_NET = "/sys/class/net"
ARPHRD_ETHER = "1"
# systemd-networkd is enabled in the target when one of these exists (Debian ships it
# disabled; images that use it enable it).
NETWORKD_ENABLED = ("/etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
                    "/etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
                    "/etc/systemd/system/dbus-org.freedesktop.network1.service")
NETWORK_DIRS = ("/etc/systemd/network", "/run/systemd/network", "/usr/lib/systemd/network",
                "/lib/systemd/network")


@dataclass(frozen=True)
class Nic:
    name: str
    mac: str
    carrier: bool


@dataclass
class Fallback:
    """``config`` to write, or None with ``reason`` saying why nothing is written;
    ``level``: how the status reports that reason (None: only the log does)."""

    config: NetworkConfig | None
    reason: str
    level: Level | None = Level.NOTE


def _read(target: TargetRoot, path: str) -> str | None:
    try:
        return target.read_text(path).strip()
    except (OSError, TargetPathError, UnicodeDecodeError):
        # carrier of a link that is down reads as EINVAL
        return None


def _listdir(target: TargetRoot, path: str) -> list[str]:
    try:
        with target.open_dir(path) as fd:
            return sorted(os.listdir(fd))
    except (OSError, TargetPathError):
        return []


def ethernet_nics(target: TargetRoot) -> list[Nic]:
    found: list[tuple[int, Nic]] = []
    for name in _listdir(target, SYS_CLASS_NET):
        base = f"{SYS_CLASS_NET}/{name}"
        if name == "lo" or target.exists(f"{base}/wireless") or target.exists(f"{base}/bridge"):
            continue
        if _read(target, f"{base}/type") not in (None, ARPHRD_ETHER):
            continue
        mac = (_read(target, f"{base}/address") or "").lower()
        if not mac or mac == "00:00:00:00:00:00":
            continue
        index_text = _read(target, f"{base}/ifindex") or ""
        index = int(index_text) if index_text.isdigit() else 0
        found.append((index, Nic(name, mac, _read(target, f"{base}/carrier") == "1")))
    return [nic for _, nic in sorted(found, key=lambda pair: (pair[0], pair[1].name))]


def choose_nic(nics: list[Nic], running: bool) -> Nic | None:
    if running:
        with_carrier = [nic for nic in nics if nic.carrier]
        if with_carrier:
            return with_carrier[0]
    return nics[0] if nics else None


def fallback(target: TargetRoot, kernel: KernelParams | None) -> Fallback:
    """``kernel``: the running kernel's parameters on a host target, else None."""
    running = target.is_host
    nic = choose_nic(ethernet_nics(target), running)
    if nic is None:
        if running:
            return Fallback(None, "no Ethernet NIC found on the running system; no fallback "
                                  "written", Level.WARNING)
        # Customizing an image offline: a target without a sysfs of its own is the rule.
        return Fallback(None, f"no Ethernet NIC found in {target.root}{SYS_CLASS_NET}; "
                              "no fallback written", None)
    if not networkd_enabled(target):
        return Fallback(None, "systemd-networkd is not enabled in the target (its own network "
                              "stack owns the NICs); no fallback written")
    owner = existing_network_file(target, nic, kernel)
    if owner is not None:
        return Fallback(None, f"{owner} already configures {nic.name}; no fallback written")
    iface = Interface(name=nic.name, match_mac=nic.mac, dhcp4=True)
    how = "with carrier" if nic.carrier else "first found"
    return Fallback(NetworkConfig([iface]), f"DHCPv4 on {nic.name} ({nic.mac}, {how})")


def networkd_enabled(target: TargetRoot) -> bool:
    return any(target.exists(path) for path in NETWORKD_ENABLED)


def existing_network_file(target: TargetRoot, nic: Nic,
                          kernel: KernelParams | None) -> str | None:
    """The first ``.network`` file of the target (networkd's order) matching ``nic``."""
    files: dict[str, str] = {}
    for directory in NETWORK_DIRS:
        for name in _listdir(target, directory):
            if name.endswith(".network") and not name.startswith(PREFIX):
                files.setdefault(name, f"{directory}/{name}")  # /etc masks /run masks /usr
    for name in sorted(files):
        try:
            text = target.read_text(files[name])
        except (OSError, TargetPathError, UnicodeDecodeError):
            continue  # masked (a link to /dev/null) or unreadable: networkd skips it too
        if matches(text, nic, kernel):
            return files[name]
    return None


def match_section(text: str) -> dict[str, list[str]]:
    conditions: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section == "Match" and "=" in line:
            key, _, value = line.partition("=")
            conditions.setdefault(key.strip(), []).extend(value.split())
    return conditions


def matches(text: str, nic: Nic, kernel: KernelParams | None) -> bool:
    """Whether networkd would use this file for ``nic``; unknown conditions count as yes."""
    for key, values in match_section(text).items():
        negate = bool(values) and values[0].startswith("!")
        words = [values[0][1:], *values[1:]] if negate else values
        if key == "Name":
            result: bool | None = any(fnmatch.fnmatchcase(nic.name, w) for w in words)
        elif key in ("MACAddress", "PermanentMACAddress"):
            result = nic.mac in (w.lower() for w in words)
        elif key == "Type":
            result = "ether" in words
        elif key == "KernelCommandLine" and kernel is not None:
            result = any(_on_command_line(w, kernel) for w in words)
        else:
            result = None
        if result is not None and result == negate:
            return False
    return True


def _on_command_line(word: str, kernel: KernelParams) -> bool:
    name, sep, value = word.partition("=")
    if sep:
        return (name, value) in kernel.params
    return any(param == name for param, _ in kernel.params)
