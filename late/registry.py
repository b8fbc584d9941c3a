"""Find the cloud-config modules: every ``late/modules/*.py`` with a ``MODULE`` spec.

Module files must stay cheap to import (heavy imports go inside ``handle``).
The registry lists the files with ``pkgscan`` (no import); with ``lazy=True``
(the runner) it takes each file's stage, frequency, activating keys and
aliases from ``modindex`` and imports a module only when its spec is needed:
it is about to run, or the schema is assembled. Files without an index entry
are imported at once, as everything was before. ``lazy=False`` imports all.

A stage's default module list is its modules sorted by their spec's ``order``
(cloud-init's usual order for the modules it has too).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bootseed.contract.problems import Problem
from bootseed.late import modules as modules_pkg
from bootseed.late.model import Frequency, ModuleFacts, Stage
from bootseed.late.modindex import INDEX
from bootseed.late.modules.base import ModuleSpec
from bootseed.late.pkgscan import iter_modules

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
class ModuleMeta:
    """What planning needs about a module; its code may not be imported yet."""

    name: str
    stage: Stage
    order: int
    frequency: Frequency
    activate_keys: tuple[str, ...]
    where: str


@dataclass
class Registry:
    # Every known module in discovery order (file name order, then extras).
    known: dict[str, ModuleMeta] = field(default_factory=dict)
    # The imported specs, by canonical name.
    specs: dict[str, ModuleSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # The runner's validation thread assembles the schema (loading every module) while
    # the main thread loads the modules it runs: one load at a time.
    _loading: threading.RLock = field(default_factory=threading.RLock, repr=False,
                                      compare=False)

    def add(self, spec: ModuleSpec, where: str = "") -> None:
        name = normalize_name(spec.name)
        if name in self.known:
            self.problems.append(Problem(where, f"module {name!r} defined twice; kept first"))
            return
        self.specs[name] = spec
        self._know(spec.facts(), where)

    def _know(self, facts: ModuleFacts, where: str) -> None:
        name = normalize_name(facts.name)
        self.known[name] = ModuleMeta(name, facts.stage, facts.order, facts.frequency,
                                      facts.activate_keys, where)
        for alias in facts.aliases:
            self.aliases.setdefault(normalize_name(alias), name)

    def resolve(self, name: str) -> str | None:
        """The canonical module name a cloud-config list entry refers to."""
        key = normalize_name(name)
        if key in self.known:
            return key
        return self.aliases.get(key)

    def meta(self, name: str) -> ModuleMeta:
        return self.known[name]

    def load(self, name: str) -> ModuleSpec | None:
        """The spec of a known module, importing it if needed; None (and a problem)
        if its file does not import or does not define it."""
        with self._loading:
            return self._load(name)

    def _load(self, name: str) -> ModuleSpec | None:
        spec = self.specs.get(name)
        if spec is not None:
            return spec
        where = self.known[name].where
        spec = _import_spec(where, self.problems)
        if spec is None:
            return None
        if normalize_name(spec.name) != name:
            self.problems.append(Problem(
                where, f"MODULE is named {spec.name!r}, the index says {name!r}"))
            return None
        self.specs[name] = spec
        return spec

    def get(self, name: str) -> ModuleSpec | None:
        canonical = self.resolve(name)
        return None if canonical is None else self.load(canonical)

    def all_specs(self) -> Iterator[ModuleSpec]:
        """Every module's spec in discovery order, importing what is not yet imported."""
        for name in list(self.known):
            spec = self.load(name)
            if spec is not None:
                yield spec

    def default_order(self, stage: Stage) -> list[str]:
        """The stage's modules by their spec's ``order``; equal orders by name."""
        in_stage = [meta for meta in self.known.values() if meta.stage is stage]
        return [meta.name for meta in sorted(in_stage, key=lambda m: (m.order, m.name))]


def _import_spec(where: str, problems: list[Problem]) -> ModuleSpec | None:
    try:
        module = importlib.import_module(where)
    except Exception as exc:  # a broken module must not take the others down
        problems.append(Problem(where, f"import failed: {exc!r}"))
        return None
    spec = getattr(module, "MODULE", None)
    if spec is None:
        return None
    if not isinstance(spec, ModuleSpec):
        problems.append(Problem(where, "MODULE is not a ModuleSpec"))
        return None
    return spec


def load_registry(extra: Iterable[ModuleSpec] = (), lazy: bool = False) -> Registry:
    """Find every module file; a file that fails to import is a problem, not a crash.

    ``lazy``: import only the files without an index entry now, the others when
    their spec is first needed (``Registry.load``)."""
    registry = Registry()
    for file_name, is_package in sorted(iter_modules(modules_pkg.__path__)):
        if file_name in _SKIP or file_name.startswith("_") or is_package:
            continue
        where = f"{modules_pkg.__name__}.{file_name}"
        entry = INDEX.get(file_name) if lazy else None
        if entry is not None and normalize_name(entry.name) not in registry.known:
            registry._know(entry, where)
            continue
        spec = _import_spec(where, registry.problems)
        if spec is not None:
            registry.add(spec, where)
    for spec in extra:
        registry.add(spec, "extra")
    return registry
