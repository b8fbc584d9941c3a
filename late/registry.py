"""Find the cloud-config modules: every ``late/modules/*.py`` with a ``MODULE`` spec.

Module files must stay cheap to import (heavy imports go inside ``handle``):
the registry imports all of them once per run, because validation needs every
schema fragment and a user may move any module into any stage.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field

from bootseed.late import modules as modules_pkg
from bootseed.late.modules.base import ModuleSpec, Stage

# cloud-init's usual order within each stage. Names without a module file are
# skipped; modules not listed here run after the listed ones of their stage.
DEFAULT_ORDER: dict[Stage, tuple[str, ...]] = {
    Stage.INIT: (
        "bootcmd",
        "write_files",
        "set_hostname",
        "update_hostname",
        "update_etc_hosts",
        "users_groups",
        "ssh",
    ),
    Stage.CONFIG: ("runcmd",),
    Stage.FINAL: (
        "write_files_deferred",
        "scripts_vendor",
        "scripts_per_once",
        "scripts_per_boot",
        "scripts_per_instance",
        "scripts_user",
        "ssh_authkey_fingerprints",
        "keys_to_console",
        "phone_home",
        "final_message",
        # Last: it marks the boot good for the GRUB fallback counter only
        # once everything before it in this boot ran.
        "boot_health",
    ),
}

_SKIP = {"base", "__init__"}


def normalize_name(name: str) -> str:
    """``cc_users-groups`` / ``Users_Groups`` / ``users-groups`` → ``users_groups``."""
    key = name.strip().lower().replace("-", "_")
    if key.endswith(".py"):
        key = key[:-3]
    if key.startswith("cc_"):
        key = key[3:]
    return key


@dataclass(frozen=True)
class LoadProblem:
    where: str
    message: str


@dataclass
class Registry:
    specs: dict[str, ModuleSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)

    def add(self, spec: ModuleSpec, where: str = "") -> None:
        name = normalize_name(spec.name)
        if name in self.specs:
            self.problems.append(LoadProblem(where, f"module {name!r} defined twice; kept first"))
            return
        self.specs[name] = spec
        for alias in spec.aliases:
            self.aliases.setdefault(normalize_name(alias), name)

    def resolve(self, name: str) -> str | None:
        """The canonical module name a cloud-config list entry refers to."""
        key = normalize_name(name)
        if key in self.specs:
            return key
        return self.aliases.get(key)

    def get(self, name: str) -> ModuleSpec | None:
        canonical = self.resolve(name)
        return None if canonical is None else self.specs[canonical]

    def default_order(self, stage: Stage) -> list[str]:
        listed = [n for n in DEFAULT_ORDER[stage] if n in self.specs]
        extra = sorted(
            n for n, spec in self.specs.items() if spec.stage is stage and n not in listed
        )
        return listed + extra


def load_registry(extra: Iterable[ModuleSpec] = ()) -> Registry:
    """Import every module file; a file that fails to import is a problem, not a crash."""
    registry = Registry()
    for info in sorted(pkgutil.iter_modules(modules_pkg.__path__), key=lambda i: i.name):
        if info.name in _SKIP or info.name.startswith("_") or info.ispkg:
            continue
        where = f"{modules_pkg.__name__}.{info.name}"
        try:
            module = importlib.import_module(where)
        except Exception as exc:  # a broken module must not take the others down
            registry.problems.append(LoadProblem(where, f"import failed: {exc!r}"))
            continue
        spec = getattr(module, "MODULE", None)
        if spec is None:
            continue
        if not isinstance(spec, ModuleSpec):
            registry.problems.append(LoadProblem(where, "MODULE is not a ModuleSpec"))
            continue
        registry.add(spec, where)
    for spec in extra:
        registry.add(spec, "extra")
    return registry
