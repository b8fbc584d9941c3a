"""EC2 NIC metadata (``meta-data/network/interfaces/macs/<mac>/``) as a network config.

Every NIC is found by its MAC and uses DHCPv4, plus DHCPv6 when the metadata lists
IPv6 addresses for it. The routes a secondary NIC learns get a higher metric
(``100 * (device-number + 1)``) so the primary NIC keeps the default route.
"""

from __future__ import annotations

from bootseed.late.netconfig.model import Checker, Interface, NetworkConfig, Parsed


def parse_ec2(tree: dict[str, object], source: str = "meta-data") -> Parsed:
    check = Checker(source)
    config = NetworkConfig()
    network = tree.get("network")
    interfaces = network.get("interfaces") if isinstance(network, dict) else None
    macs = interfaces.get("macs") if isinstance(interfaces, dict) else None
    if not isinstance(macs, dict):
        return Parsed(config, check.problems)
    found: list[tuple[int, Interface]] = []
    for raw_mac, raw_nic in macs.items():
        where = f"network/interfaces/macs/{raw_mac}"
        nic = check.mapping(where, raw_nic)
        mac = check.mac(where, raw_mac)
        if nic is None or mac is None:
            continue
        number = check.integer(f"{where}/device-number", nic.get("device-number", "0"), 0, 1023)
        if number is None:
            continue
        iface = Interface(name=f"ec2nic{number}", match_mac=mac, dhcp4=True,
                          dhcp6=bool(str(nic.get("ipv6s") or "").strip()),
                          dhcp_route_metric=100 * (number + 1) if number else None)
        found.append((number, iface))
    numbers = [n for n, _ in found]
    for number in sorted({n for n in numbers if numbers.count(n) > 1}):
        check.problem("network/interfaces/macs", f"device-number {number} used twice")
    config.interfaces = [iface for _, iface in sorted(found, key=lambda pair: pair[0])]
    return Parsed(config, check.problems)
