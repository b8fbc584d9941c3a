"""``network_config``: write the seed's network configuration as systemd-networkd files,
first of the init modules, so in the local stage before READY=1 and before networkd
starts (``bootseed.service`` is ordered before the network).

Where the config comes from: the seed's ``network-config`` payload (NoCloud v1 or v2,
a config drive's ``network_data.json``), else an EC2 seed's NIC metadata, else the
fallback (DHCPv4 on one NIC found by MAC; :mod:`bootseed.late.netconfig.fallback`).
Any problem in the config is named and nothing is written. Turned off by
``network-config=disabled`` on the kernel command line or ``network: {config: disabled}``
in cloud-config, the target's ``/etc/cloud/cloud.cfg`` or ``cloud.cfg.d/*.cfg``.
networkd is never restarted: the files take effect when it starts.
"""

from __future__ import annotations

from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.netconfig.apply import Applied, apply
from bootseed.late.netconfig.fallback import fallback, networkd_enabled
from bootseed.late.netconfig.source import from_seed
from bootseed.late.netconfig.switches import disabled_by

SCHEMA: dict[str, Any] = {
    "properties": {
        "network": {
            "type": "object",
            "properties": {"config": {"enum": ["disabled"]}},
        },
    }
}


class NetworkConfigError(Exception):
    """The seed's network config has problems (each named in the status); nothing written."""


def handle(ctx: ModuleContext) -> None:
    network = ctx.cfg.get("network")
    if isinstance(network, dict) and set(network) - {"config"}:
        ctx.problems.append(Problem("network", "a network configuration in cloud-config is "
                                    "not applied; only config: disabled is read here (the "
                                    "seed's network-config is)", Level.WARNING))
    reason = disabled_by(ctx.cfg, ctx.target, ctx.kernel)
    if reason is not None:
        _note(ctx, f"disabled by {reason}; nothing written")
        return
    seed_network = from_seed(ctx.payloads, ctx.instance.metadata, ctx.instance.source)
    if seed_network.disabled:
        _note(ctx, f"disabled by config: disabled in {seed_network.origin}; nothing written")
        return
    if seed_network.parsed is not None:
        applied = apply(ctx.target, seed_network.parsed.config, seed_network.parsed.problems)
        if applied.problems:
            ctx.problems += applied.problems
            raise NetworkConfigError(
                f"{seed_network.origin}: {len(applied.problems)} problem(s); "
                "no network configuration written")
        _report(ctx, f"from {seed_network.origin}", applied)
        if not networkd_enabled(ctx.target):
            ctx.problems.append(Problem("network", "systemd-networkd is not enabled in the "
                                        "target: the files written take effect only once it "
                                        "is", Level.WARNING))
        return
    chosen = fallback(ctx.target, ctx.kernel)
    if chosen.config is None:
        _note(ctx, f"no network config in the seed; {chosen.reason}", chosen.level)
        return
    applied = apply(ctx.target, chosen.config)
    if applied.problems:  # a fallback we built ourselves: a bug, named like any other
        ctx.problems += applied.problems
        raise NetworkConfigError("fallback: no network configuration written")
    _report(ctx, f"fallback: {chosen.reason}", applied)


def _note(ctx: ModuleContext, message: str, level: Level | None = Level.NOTE) -> None:
    ctx.log.info("%s", message)
    if level is not None:
        ctx.problems.append(Problem("network", message, level))


def _report(ctx: ModuleContext, what: str, applied: Applied) -> None:
    ctx.log.info("network config %s: wrote %s", what, ", ".join(applied.written))
    ctx.problems += applied.warnings
    if applied.removed:
        ctx.log.info("removed our earlier %s", ", ".join(applied.removed))


MODULE = ModuleSpec(
    name="network_config",
    stage=Stage.INIT,
    # cloud-init applies network configuration before any module runs.
    order=0,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
