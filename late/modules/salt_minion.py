"""``salt_minion``: the Salt minion's configuration, grains and keys, and its service.

cloud-init 22.4's files: ``conf`` becomes ``<config_dir>/minion`` and ``grains``
``<config_dir>/grains`` (YAML); ``public_key``/``private_key`` become
``<pki_dir>/minion.pub`` (0644) and ``minion.pem`` (0600), ``pki_dir`` being
``conf.pki_dir`` or ``/etc/salt/pki/minion``. The files are written whether
or not Salt is installed. Salt is not in Debian bookworm: ``pkg_name``
(``salt-minion``) is installed from the apt sources the user configured, and
when that fails the status says so and names the fix. With ``conf.file_client:
local`` the service is disabled and ``salt-call --local state.apply`` runs
once instead; otherwise the service is enabled and restarted.
"""

from __future__ import annotations

from typing import Any

import yaml
from bootseed.contract.problems import Level, Problem
from bootseed.late import services
from bootseed.late.apt import aptget
from bootseed.late.execute import find_tool, run_captured
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

DEFAULT_CONFIG_DIR = "/etc/salt"
DEFAULT_PKI_DIR = "/etc/salt/pki/minion"
STATE_APPLY_TIMEOUT = 1800.0

_STR = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "properties": {
        "salt_minion": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "pkg_name": _STR,
                "service_name": _STR,
                "config_dir": _STR,
                "conf": {"type": "object"},
                "grains": {"type": "object"},
                "public_key": _STR,
                "private_key": _STR,
                "pki_dir": _STR,
            },
        }
    }
}


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("salt_minion")
    if not isinstance(cfg, dict):
        return
    if isinstance(cfg.get("private_key"), str):
        ctx.add_secret(cfg["private_key"])
    config_dir = str(cfg.get("config_dir", DEFAULT_CONFIG_DIR))
    conf = cfg.get("conf") or {}
    if conf:
        ctx.target.write(f"{config_dir}/minion", _yaml(conf), mode=0o644)
    if cfg.get("grains"):
        ctx.target.write(f"{config_dir}/grains", _yaml(cfg["grains"]), mode=0o644)
    pki_dir = str(cfg.get("pki_dir", conf.get("pki_dir", DEFAULT_PKI_DIR)))
    if isinstance(cfg.get("public_key"), str):
        ctx.target.write(f"{pki_dir}/minion.pub", cfg["public_key"], mode=0o644,
                         dir_mode=0o700)
    if isinstance(cfg.get("private_key"), str):
        ctx.target.write(f"{pki_dir}/minion.pem", cfg["private_key"], mode=0o600,
                         dir_mode=0o700)
    package = str(cfg.get("pkg_name", "salt-minion"))
    outcome = aptget.ensure_installed(ctx.target, [package])
    if not outcome.ok:
        ctx.problems.append(Problem(
            "salt_minion.pkg_name", f"{package} is not installed and could not be installed "
            "(Debian bookworm has no Salt: add the Salt project's repository in apt.sources); "
            f"its configuration is written:\n{outcome.tail}", Level.WARNING))
        return
    service = str(cfg.get("service_name", "salt-minion"))
    if conf.get("file_client") == "local":
        problem = services.disable(ctx.target, service, "salt_minion")
        if problem is not None:
            ctx.problems.append(problem)
        _state_apply(ctx)
        return
    problem = services.enable(ctx.target, service, "salt_minion", start=True)
    if problem is not None:
        ctx.problems.append(problem)


def _state_apply(ctx: ModuleContext) -> None:
    salt_call = find_tool(ctx.target, "salt-call")
    if salt_call is None:
        ctx.problems.append(Problem("salt_minion.conf.file_client",
                                    "salt-call is not installed: no masterless state ran"))
        return
    run = run_captured(ctx.target, [salt_call, "--local", "state.apply"],
                       timeout=STATE_APPLY_TIMEOUT)
    if run.returncode != 0 or run.timed_out:
        tail = "\n".join(run.output.strip().splitlines()[-8:])
        ctx.problems.append(Problem("salt_minion", f"salt-call --local state.apply exited "
                                    f"{run.returncode}:\n{tail}"))


MODULE = ModuleSpec(
    name="salt_minion",
    stage=Stage.FINAL,
    order=18,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("salt_minion",),
    aliases=("salt-minion",),
)
