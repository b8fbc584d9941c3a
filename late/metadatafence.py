"""The fence around the cloud's metadata service: who may still reach it after the seed.

Two strengths, both an nftables table of their own (``inet bootseed_metadata``,
one ``output`` chain) so that nothing else in the system's ruleset is touched
and undoing it is deleting that one table:

- ``ROOT_ONLY`` (the ``metadata_lockdown`` key, on by default on EC2): packets
  to the metadata addresses from a socket not owned by uid 0 are rejected;
- ``EVERYONE`` (cloud-init's ``disable_ec2_metadata: true``): every local
  socket is rejected. cloud-init does this with a ``prohibit`` route; without
  nft this fence falls back to the same routes (``ip route replace prohibit``),
  while ``ROOT_ONLY`` has no route equivalent and is reported as not applied.

The ruleset replaces an older copy of the table atomically (``nft -f`` runs a
file as one transaction: create-if-missing, delete, create), so it can be
loaded on every boot and again in the same boot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bootseed.late.execute import TargetExecError, find_tool, run_captured
from bootseed.late.target import TargetRoot

TABLE_FAMILY = "inet"
TABLE_NAME = "bootseed_metadata"
# The EC2 instance metadata service, over IPv4 and (Nitro) IPv6.
IPV4_ADDRESS = "169.254.169.254"
IPV6_ADDRESS = "fd00:ec2::254"
# Where the loaded ruleset is kept for the administrator to read (and nft -f to load).
RULESET_FILE = "/run/bootseed/metadata-fence.nft"
NFT_TIMEOUT = 30.0


class Fence(enum.Enum):
    ROOT_ONLY = "only root (uid 0) may reach the metadata service"
    EVERYONE = "nobody may reach the metadata service"


@dataclass(frozen=True)
class FenceOutcome:
    """What was done: ``mechanism`` is ``nft``, ``route`` or ``none`` (nothing applied)."""

    mechanism: str
    detail: str

    @property
    def applied(self) -> bool:
        return self.mechanism != "none"


def ruleset(fence: Fence) -> str:
    """The nft script for ``fence`` (loaded with ``nft -f``)."""
    owner = "meta skuid != 0 " if fence is Fence.ROOT_ONLY else ""
    table = f"table {TABLE_FAMILY} {TABLE_NAME}"
    return (
        f"# bootseed: {fence.value}\n"
        f"{table}\n"
        f"delete {table}\n"
        f"{table} {{\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        f"\t\tip daddr {IPV4_ADDRESS} {owner}reject with icmpx admin-prohibited\n"
        f"\t\tip6 daddr {IPV6_ADDRESS} {owner}reject with icmpx admin-prohibited\n"
        "\t}\n"
        "}\n"
    )


class FenceError(RuntimeError):
    """A tool that exists failed; the message says which and how."""


def _nft_file(target: TargetRoot, nft: str, text: str) -> None:
    target.write(RULESET_FILE, text.encode(), mode=0o600)
    run = run_captured(target, [nft, "-f", RULESET_FILE], timeout=NFT_TIMEOUT)
    if run.returncode != 0:
        raise FenceError(f"nft -f {RULESET_FILE} exited {run.returncode}: "
                         f"{run.output.strip()[-300:]}")


def _route_argvs(ip: str, verb: str) -> list[list[str]]:
    return [[ip, "-4", "route", verb, "prohibit", f"{IPV4_ADDRESS}/32"],
            [ip, "-6", "route", verb, "prohibit", f"{IPV6_ADDRESS}/128"]]


def apply(target: TargetRoot, fence: Fence) -> FenceOutcome:
    """Load ``fence`` into the running kernel (``target`` must be the running system)."""
    nft = find_tool(target, "nft")
    if nft is not None:
        _nft_file(target, nft, ruleset(fence))
        return FenceOutcome("nft", f"nftables table {TABLE_FAMILY} {TABLE_NAME}")
    if fence is Fence.ROOT_ONLY:
        return FenceOutcome("none", "nft is not installed: no rule by socket owner "
                                    "is possible, the metadata service stays open to every user")
    ip = find_tool(target, "ip")
    if ip is None:
        return FenceOutcome("none", "neither nft nor ip is installed: the metadata "
                                    "service stays open")
    ipv4, ipv6 = _route_argvs(ip, "replace")
    run = run_captured(target, ipv4, timeout=NFT_TIMEOUT)
    if run.returncode != 0:
        raise FenceError(f"ip route replace prohibit {IPV4_ADDRESS} exited "
                         f"{run.returncode}: {run.output.strip()[-300:]}")
    # The IPv6 route fails when the kernel has IPv6 off, where there is nothing to fence.
    v6 = run_captured(target, ipv6, timeout=NFT_TIMEOUT).returncode == 0
    return FenceOutcome("route", f"prohibit route to {IPV4_ADDRESS}"
                        + (f" and {IPV6_ADDRESS}" if v6 else " (IPv6 is off)"))


def remove(target: TargetRoot) -> list[str]:
    """Undo any fence in the running kernel; what was removed, for the user."""
    removed: list[str] = []
    nft = find_tool(target, "nft")
    if nft is not None:
        listed = run_captured(target, [nft, "list", "table", TABLE_FAMILY, TABLE_NAME],
                              timeout=NFT_TIMEOUT)
        if listed.returncode == 0:
            # An argv, not a ruleset file: clean must not recreate /run/bootseed.
            run = run_captured(target, [nft, "delete", "table", TABLE_FAMILY, TABLE_NAME],
                               timeout=NFT_TIMEOUT)
            if run.returncode != 0:
                raise FenceError(f"nft delete table exited {run.returncode}: "
                                 f"{run.output.strip()[-300:]}")
            removed.append(f"nftables table {TABLE_FAMILY} {TABLE_NAME}")
    ip = find_tool(target, "ip")
    if ip is not None:
        for argv, address in zip(_route_argvs(ip, "del"), (IPV4_ADDRESS, IPV6_ADDRESS),
                                 strict=True):
            try:
                if run_captured(target, argv, timeout=NFT_TIMEOUT).returncode == 0:
                    removed.append(f"prohibit route to {address}")
            except TargetExecError:
                continue
    return removed
