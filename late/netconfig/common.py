"""What the v1 and v2 formats share: bond and bridge parameters in networkd's spelling."""

from __future__ import annotations

from bootseed.late.netconfig.model import Checker, NetworkConfig

BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
# v2 bond parameter -> (networkd [Bond] key, kind); kinds: word, ms (milliseconds), int
BOND_PARAMETERS: dict[str, tuple[str, str]] = {
    "mode": ("Mode", "mode"),
    "lacp-rate": ("LACPTransmitRate", "word"),
    "mii-monitor-interval": ("MIIMonitorSec", "ms"),
    "min-links": ("MinLinks", "int"),
    "transmit-hash-policy": ("TransmitHashPolicy", "word"),
    "ad-select": ("AdSelect", "word"),
    "up-delay": ("UpDelaySec", "ms"),
    "down-delay": ("DownDelaySec", "ms"),
}
# v2 bridge parameter -> (networkd [Bridge] key, kind); kinds: bool, s (seconds), int
BRIDGE_PARAMETERS: dict[str, tuple[str, str]] = {
    "stp": ("STP", "bool"),
    "forward-delay": ("ForwardDelaySec", "s"),
    "hello-time": ("HelloTimeSec", "s"),
    "max-age": ("MaxAgeSec", "s"),
    "priority": ("Priority", "int"),
    "ageing-time": ("AgeingTimeSec", "s"),
}


def bond_settings(check: Checker, where: str,
                  params: dict[str, object]) -> tuple[list[tuple[str, str]], str | None]:
    """networkd [Bond] settings and the primary member's name from v2-named parameters."""
    settings: list[tuple[str, str]] = []
    primary: str | None = None
    for key, value in params.items():
        place = f"{where}.{key}"
        if key == "primary":
            primary = check.ifname(place, value)
            continue
        known = BOND_PARAMETERS.get(key)
        if known is None:
            check.problem(place, "bond parameter not supported; nothing is written")
            continue
        setting, kind = known
        text: str | None
        if kind == "mode":
            text = value if value in BOND_MODES else None
            if text is None:
                check.problem(place, f"unknown bond mode; known: {', '.join(BOND_MODES)}")
        elif kind == "ms":
            number = check.integer(place, value, 0, 86_400_000)
            text = None if number is None else f"{number}ms"
        elif kind == "int":
            number = check.integer(place, value, 0, 65535)
            text = None if number is None else str(number)
        else:
            text = check.word(place, value)
        if text is not None:
            settings.append((setting, text))
    return settings, primary


def bridge_settings(check: Checker, where: str,
                    params: dict[str, object]) -> list[tuple[str, str]]:
    settings: list[tuple[str, str]] = []
    for key, value in params.items():
        place = f"{where}.{key}"
        known = BRIDGE_PARAMETERS.get(key)
        if known is None:
            check.problem(place, "bridge parameter not supported; nothing is written")
            continue
        setting, kind = known
        text: str | None = None
        if kind == "bool":
            flag = check.flag(place, value)
            text = None if flag is None else ("yes" if flag else "no")
        else:
            number = check.integer(place, value, 0, 65535 if kind == "int" else 1_000_000)
            text = None if number is None else (f"{number}s" if kind == "s" else str(number))
        if text is not None:
            settings.append((setting, text))
    return settings


def check_references(check: Checker, config: NetworkConfig) -> None:
    """Bond and bridge members and VLAN links must be devices of this config."""
    names = {i.name for i in config.interfaces}
    for iface in config.interfaces:
        for member in iface.members:
            if member not in names:
                check.problem(f"{iface.name}: members", f"{member!r} is not defined here")
        if iface.vlan_link is not None and iface.vlan_link not in names:
            check.problem(f"{iface.name}: link", f"{iface.vlan_link!r} is not defined here")
