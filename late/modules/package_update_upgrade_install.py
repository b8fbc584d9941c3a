"""``package_update_upgrade_install``: apt-get update, upgrade and install on first boot.

cloud-init 22.4's keys: ``packages`` (``name``, ``name=version``,
``[name, version]``, and ``{apt: [...]}``), ``package_update``,
``package_upgrade``, ``package_reboot_if_required``, with the older
``apt_update``/``apt_upgrade``/``apt_reboot_if_required`` spellings. Listing
packages implies an update. It runs in the final stage, so package work never
holds up reaching multi-user.

A package apt cannot find is named in the status (the others are still
installed) and the run ends degraded; an update or upgrade that fails is
reported with the tail of apt's output and the install still goes on. Forms
for other package managers (``snap:``, ...) are reported as unsupported on
this system, never dropped silently.
"""

from __future__ import annotations

from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.apt import aptget
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

REBOOT_REQUIRED = "/run/reboot-required"
ALIASES = {"apt_update": "package_update", "apt_upgrade": "package_upgrade",
           "apt_reboot_if_required": "package_reboot_if_required"}
_PACKAGE_ITEM: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        {"type": "object", "additionalProperties": {"type": "array"}},
    ]
}
SCHEMA: dict[str, Any] = {
    "properties": {
        "packages": {"type": "array", "items": _PACKAGE_ITEM},
        "package_update": {"type": "boolean"},
        "package_upgrade": {"type": "boolean"},
        "package_reboot_if_required": {"type": "boolean"},
        "apt_update": {"type": "boolean"},
        "apt_upgrade": {"type": "boolean"},
        "apt_reboot_if_required": {"type": "boolean"},
    }
}


def requested_packages(items: Any, problems: list[Problem]) -> list[str]:
    """``packages`` as apt arguments (``name`` or ``name=version``)."""
    if not isinstance(items, list):
        problems.append(Problem("packages", "must be a list; nothing installed"))
        return []
    wanted: list[str] = []
    for index, item in enumerate(items):
        where = f"packages[{index}]"
        if isinstance(item, str) and item.strip():
            wanted.append(item.strip())
        elif (isinstance(item, list) and 1 <= len(item) <= 2
              and all(isinstance(x, str | int | float) for x in item)):
            wanted.append("=".join(str(x) for x in item))
        elif isinstance(item, dict):
            for manager, nested in item.items():
                if manager == "apt":
                    wanted += requested_packages(nested, problems)
                else:
                    problems.append(Problem(f"{where}.{manager}",
                                            f"{manager} packages are not supported on this "
                                            "system (Debian, apt only); not installed"))
        else:
            problems.append(Problem(where, "must be a name, [name, version] or "
                                    "{apt: [...]}; skipped"))
    for request in wanted:
        if any(c.isspace() for c in request) or request.startswith("-"):
            problems.append(Problem("packages", f"{request!r} is not a package name; skipped"))
    return [r for r in wanted if not any(c.isspace() for c in r) and not r.startswith("-")]


def _flag(ctx: ModuleContext, key: str) -> bool:
    value = ctx.cfg.get(key)
    for old, new in ALIASES.items():
        if new == key and old in ctx.cfg:
            ctx.problems.append(Problem(old, f"deprecated: use {new} instead", Level.NOTE))
            if value is None:
                value = ctx.cfg[old]
    if value is None:
        return False
    if not isinstance(value, bool):
        ctx.problems.append(Problem(key, "must be true or false; taken as false"))
        return False
    return value


def handle(ctx: ModuleContext) -> None:
    packages = requested_packages(ctx.cfg.get("packages", []), ctx.problems)
    upgrade = _flag(ctx, "package_upgrade")
    update = _flag(ctx, "package_update") or upgrade or bool(packages)
    reboot = _flag(ctx, "package_reboot_if_required")
    failures: list[str] = []
    if update:
        outcome = aptget.update(ctx.target)
        if not outcome.ok:
            ctx.problems.append(Problem("package_update", f"{outcome.step} reported failures:\n"
                                        f"{outcome.tail}", Level.WARNING))
    if upgrade:
        outcome = aptget.upgrade(ctx.target)
        if not outcome.ok:
            failures.append(f"{outcome.step} failed:\n{outcome.tail}")
    if packages:
        outcome = aptget.install(ctx.target, packages)
        ctx.log.info("installed: %s", " ".join(outcome.installed) or "nothing")
        if outcome.unavailable:
            ctx.problems.append(Problem(
                "packages", f"not available from any configured source: "
                            f"{', '.join(outcome.unavailable)}; the other packages were "
                            f"installed:\n{outcome.tail}"))
        elif not outcome.ok:
            failures.append(f"{outcome.step} of {' '.join(packages)} failed:\n{outcome.tail}")
    if reboot and ctx.target.exists(REBOOT_REQUIRED):
        _reboot(ctx)
    if failures:
        raise RuntimeError("; ".join(failures))


def _reboot(ctx: ModuleContext) -> None:
    if not ctx.target.is_host:
        ctx.problems.append(Problem("package_reboot_if_required", "a reboot is required; "
                                    "not rebooting a target that is not the running system",
                                    Level.NOTE))
        return
    from bootseed.late.execute import run_captured

    ctx.console("bootseed: packages require a reboot; rebooting once this boot's "
                "configuration is finished")
    # --no-block: systemd reboots after the running units (this final stage
    # included) stop, so the rest of the stage still runs and is recorded.
    run = run_captured(ctx.target, ["systemctl", "reboot", "--no-block"], timeout=60)
    if run.returncode != 0:
        ctx.problems.append(Problem("package_reboot_if_required",
                                    f"systemctl reboot failed: {run.output.strip()[-200:]}"))


MODULE = ModuleSpec(
    name="package_update_upgrade_install",
    stage=Stage.FINAL,
    order=5,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("packages", "package_update", "package_upgrade",
                   "package_reboot_if_required", *ALIASES),
    aliases=("package-update-upgrade-install",),
)
