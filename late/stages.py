"""The runner's stages and which modules each one runs, in which order, how often.

Four stages, always in this order: ``local`` (seed, instance, state, user-data
and the ``cloud_init_modules``: nothing there needs the network once the seed
is cached), ``network`` (entered after READY=1 and the bounded network wait;
it processes user-data and runs the init modules only when user-data includes
URLs), ``config`` (``cloud_config_modules``) and ``final``
(``cloud_final_modules``, ``boot-finished``).

A cloud-config ``cloud_<stage>_modules`` list replaces that stage's default
list, as in cloud-init; an entry is ``name``, ``[name, frequency, ...]`` or
``{name: ..., frequency: ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.model import Frequency, Stage
from bootseed.late.registry import ModuleMeta, Registry


class RunStage(StrEnum):
    LOCAL = "local"
    NETWORK = "network"
    CONFIG = "config"
    FINAL = "final"


ORDER: tuple[RunStage, ...] = (RunStage.LOCAL, RunStage.NETWORK, RunStage.CONFIG, RunStage.FINAL)

MODULE_STAGE: dict[RunStage, Stage] = {
    RunStage.NETWORK: Stage.INIT,
    RunStage.CONFIG: Stage.CONFIG,
    RunStage.FINAL: Stage.FINAL,
}

LIST_KEYS: dict[Stage, str] = {
    Stage.INIT: "cloud_init_modules",
    Stage.CONFIG: "cloud_config_modules",
    Stage.FINAL: "cloud_final_modules",
}


@dataclass(frozen=True)
class PlannedModule:
    name: str
    # The module's code is imported only when it is about to run.
    meta: ModuleMeta
    frequency: Frequency
    # "default" or the config key that put it here, for the status.
    origin: str


def plan_stage(
    stage: Stage, cfg: dict[str, Any], registry: Registry
) -> tuple[list[PlannedModule], list[Problem]]:
    """The modules of ``stage`` in run order with their effective frequencies."""
    key = LIST_KEYS[stage]
    problems: list[Problem] = []
    if key not in cfg:
        defaults = [
            PlannedModule(n, registry.meta(n), registry.meta(n).frequency, "default")
            for n in registry.default_order(stage)
        ]
        return defaults, problems
    entries = cfg[key]
    if not isinstance(entries, list):
        problems.append(Problem(key, f"must be a list, got {type(entries).__name__}; "
                                     "using the default list", Level.WARNING))
        return plan_stage(stage, {}, registry)[0], problems
    plan: list[PlannedModule] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{key}[{index}]"
        parsed = _parse_entry(entry)
        if isinstance(parsed, str):
            problems.append(Problem(where, parsed, Level.WARNING))
            continue
        raw_name, raw_freq = parsed
        canonical = registry.resolve(raw_name)
        if canonical is None:
            problems.append(Problem(where, f"no bootseed module named {raw_name!r}; skipped",
                                    Level.WARNING))
            continue
        meta = registry.meta(canonical)
        frequency = meta.frequency
        if raw_freq is not None:
            try:
                frequency = Frequency.parse(raw_freq)
            except ValueError:
                problems.append(Problem(
                    where, f"unknown frequency {raw_freq!r} for {canonical}; using "
                           f"its default {meta.frequency}", Level.WARNING))
        if canonical in seen:
            problems.append(Problem(where, f"{canonical} listed twice; runs once",
                                    Level.WARNING))
            continue
        seen.add(canonical)
        plan.append(PlannedModule(canonical, meta, frequency, key))
    return plan, problems


def _parse_entry(entry: object) -> tuple[str, str | None] | str:
    """``(name, frequency or None)``, or an error message."""
    if isinstance(entry, str):
        return (entry, None) if entry.strip() else "empty module name"
    if isinstance(entry, list):
        if not entry or not isinstance(entry[0], str):
            return "a list entry must start with the module name"
        freq = entry[1] if len(entry) > 1 else None
        if freq is not None and not isinstance(freq, str):
            return "the frequency must be a string"
        return entry[0], freq
    if isinstance(entry, dict):
        name = entry.get("name")
        freq = entry.get("frequency")
        if not isinstance(name, str) or not name.strip():
            return "a mapping entry needs 'name'"
        if freq is not None and not isinstance(freq, str):
            return "the frequency must be a string"
        return name, freq
    return f"entry must be a name, a list or a mapping, got {type(entry).__name__}"
