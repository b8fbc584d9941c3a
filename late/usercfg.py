"""Normalise the cloud-config ``users`` / ``user`` / ``system_info.default_user`` keys.

Several modules need the same answer (which accounts to make, who the default user
is), so it is worked out once here from the merged config. cloud-init's system
config ships ``users: [default]``; bootseed behaves the same when ``users`` is
absent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# The distro default user when the system config does not name one (Debian's cloud
# images call it "debian"); the groups are created on demand if the target lacks them.
DEBIAN_DEFAULT_USER: dict[str, Any] = {
    "name": "debian",
    "lock_passwd": True,
    "gecos": "Debian",
    "groups": ["adm", "audio", "cdrom", "dialout", "dip", "floppy", "plugdev", "sudo", "video"],
    "sudo": ["ALL=(ALL) NOPASSWD:ALL"],
    "shell": "/bin/bash",
}


@dataclass
class UserSpec:
    where: str  # e.g. "users[2]", for error messages
    config: dict[str, Any]
    is_default: bool = False

    @property
    def name(self) -> str:
        return str(self.config.get("name", ""))


@dataclass
class UserPlan:
    users: list[UserSpec] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def default(self) -> UserSpec | None:
        return next((u for u in self.users if u.is_default), None)


def _normal_keys(entry: dict[str, Any]) -> dict[str, Any]:
    return {str(k).replace("-", "_"): v for k, v in entry.items()}


def default_user_config(cfg: dict[str, Any]) -> dict[str, Any] | None:
    sysinfo = cfg.get("system_info")
    if isinstance(sysinfo, dict) and "default_user" in sysinfo:
        base = sysinfo["default_user"]
        if not isinstance(base, dict):
            return None
        found = _normal_keys(copy.deepcopy(base))
    else:
        found = copy.deepcopy(DEBIAN_DEFAULT_USER)
    old_style = cfg.get("user")
    if isinstance(old_style, str) and old_style:
        found["name"] = old_style
    elif isinstance(old_style, dict):
        found.update(_normal_keys(old_style))
    return found if found.get("name") else None


def plan_users(cfg: dict[str, Any]) -> UserPlan:
    """The accounts the config asks for, in order, each with where it came from."""
    plan = UserPlan()
    raw: Any = cfg.get("users", ["default"])
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    elif isinstance(raw, dict):
        # Old style: {name: {settings}} or {name: true}.
        raw = [
            {"name": k, **(v if isinstance(v, dict) else {})}
            for k, v in raw.items()
            if v is not False
        ]
    if not isinstance(raw, list):
        plan.problems.append(f"users: expected a list, got {type(raw).__name__}")
        return plan
    if cfg.get("user") and "default" not in raw:
        raw = ["default", *raw]
    by_name: dict[str, UserSpec] = {}
    for index, item in enumerate(raw):
        where = f"users[{index}]"
        if item == "default":
            config = default_user_config(cfg)
            if config is None:
                plan.problems.append(f"{where}: 'default' given but no default user is configured")
                continue
            spec = UserSpec(where, config, is_default=True)
        elif isinstance(item, str):
            spec = UserSpec(where, {"name": item})
        elif isinstance(item, dict):
            config = _normal_keys(copy.deepcopy(item))
            if not isinstance(config.get("name"), str) or not config["name"]:
                plan.problems.append(f"{where}: a user entry needs a 'name'")
                continue
            spec = UserSpec(where, config)
        else:
            plan.problems.append(f"{where}: expected a name or a mapping, got {item!r}")
            continue
        earlier = by_name.get(spec.name)
        if earlier is not None:
            # The same account twice (e.g. "default" and its name spelled out): merge.
            earlier.config.update(spec.config)
            earlier.is_default = earlier.is_default or spec.is_default
            continue
        by_name[spec.name] = spec
        plan.users.append(spec)
    return plan


def default_user_name(cfg: dict[str, Any]) -> str | None:
    default = plan_users(cfg).default
    return default.name if default else None
