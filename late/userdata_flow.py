"""From the seed's payloads to one validated cloud-config.

System config (``/etc/bootseed/bootseed.cfg`` then ``bootseed.cfg.d/*.cfg``
in name order) is merged under vendor-data, which is merged under user-data.
Every key remembers where it came from so a schema problem names its file,
part and line. Nothing here stops the run: problems are collected and
returned with whatever config could be built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.contract.seedcache import Seed
from bootseed.late.model import InstanceInfo
from bootseed.late.modules.base import ModuleSpec
from bootseed.late.registry import Registry
from bootseed.late.target import TargetRoot
from bootseed.late.userdata.types import Limits, Part, UserDataResult

_INCLUDE = re.compile(rb"(?mi)^#include|x-include-(?:once-)?url")
_SCAN_LIMIT = 16 * 1024 * 1024

SYSTEM_CONFIG = "/etc/bootseed/bootseed.cfg"
SYSTEM_CONFIG_DIR = "/etc/bootseed/bootseed.cfg.d"

Origins = dict[tuple[Any, ...], str]


@dataclass
class BuiltConfig:
    config: dict[str, Any] = field(default_factory=dict)
    origins: Origins = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    user_parts: list[Part] = field(default_factory=list)
    vendor_parts: list[Part] = field(default_factory=list)
    parts_summary: dict[str, Any] = field(default_factory=dict)
    schema_checked: bool = False


def load_system_config(target: TargetRoot) -> BuiltConfig:
    from bootseed.late.userdata.merge import merge_config
    from bootseed.late.userdata.yamlmarks import load_with_marks

    built = BuiltConfig()
    files = [target.real_path(SYSTEM_CONFIG)]
    cfg_dir = target.real_path(SYSTEM_CONFIG_DIR)
    if cfg_dir.is_dir():
        files += sorted(p for p in cfg_dir.iterdir() if p.suffix == ".cfg" and p.is_file())
    for host_path in files:
        inside = "/" + str(host_path.relative_to(target.root)).lstrip("/")
        try:
            text = host_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            built.problems.append(Problem(inside, f"unreadable: {exc}"))
            continue
        try:
            data, marks = load_with_marks(text)
        except Exception as exc:  # a YAML error names its own line
            built.problems.append(Problem(inside, f"not valid YAML: {exc}"))
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            built.problems.append(Problem(inside, "must be a mapping of cloud-config keys"))
            continue
        built.config = merge_config(built.config, data)
        built.origins.update({path: f"{inside} line {line}" for path, line in marks.items()})
    return built


def needs_network(seed: Seed) -> bool:
    """Whether user- or vendor-data pulls in URLs, so processing it must wait for the
    network. Errs towards yes: a false alarm only moves work after READY=1."""
    return any(_pulls_urls(seed.payloads.get(name) or b"")
               for name in ("user-data", "vendor-data"))


def _pulls_urls(raw: bytes) -> bool:
    from bootseed.late.userdata.budget import Budget, BudgetExceeded
    from bootseed.late.userdata.detect import is_gzip
    from bootseed.late.userdata.gunzip import GunzipError, gunzip

    if is_gzip(raw):
        try:
            raw = gunzip(raw, Budget(_SCAN_LIMIT))
        except (GunzipError, BudgetExceeded):
            return False  # the engine will report it; nothing to fetch from it
    return _INCLUDE.search(raw) is not None


def _processed(raw: bytes, name: str, info: InstanceInfo, instance_data: dict[str, Any],
               instance_dir: Path) -> UserDataResult:
    """The engine's result for one payload, from the per-instance cache when the same
    input was processed before (``userdatacache``); payloads with URLs are never cached."""
    if _pulls_urls(raw):
        from bootseed.late.userdata.engine import process

        return process(raw, origin=name, launch_index=info.launch_index,
                       instance_data=instance_data, limits=Limits(),
                       include_cache_dir=instance_dir / "include-cache")
    from bootseed.late import userdatacache

    key = userdatacache.cache_key(raw, info.launch_index, instance_data)
    path = userdatacache.path_for(instance_dir, name)
    cached = userdatacache.load(path, key)
    if cached is not None:
        return cached
    from bootseed.late.userdata.engine import process

    result = process(raw, origin=name, launch_index=info.launch_index,
                     instance_data=instance_data, limits=Limits(),
                     include_cache_dir=instance_dir / "include-cache")
    userdatacache.store(path, key, result)
    return result


def _vendor_enabled(user_cfg: dict[str, Any]) -> bool:
    setting = user_cfg.get("vendor_data")
    if isinstance(setting, dict):
        enabled = setting.get("enabled", True)
        return not (enabled is False or str(enabled).lower() in ("false", "no", "0"))
    return True


def build_config(
    seed: Seed,
    info: InstanceInfo,
    target: TargetRoot,
    instance_dir: Path,
    instance_data: dict[str, Any],
    registry: Registry,
    schema_cache: Path | None = None,
    extra_modules: tuple[ModuleSpec, ...] = (),
    validate: bool = True,
) -> BuiltConfig:
    """``schema_cache``: a file to keep the validation verdict in between runs
    (``schemacache``); ``extra_modules``: the registry's extra specs, for its key.
    ``validate=False`` leaves validation to the caller (``validate_built``), which the
    runner does after READY=1."""
    from bootseed.late.userdata.merge import merge_config

    built = load_system_config(target)
    results = {}
    for name in ("user-data", "vendor-data"):
        raw = seed.payloads.get(name)
        if raw is None or not raw.strip():
            continue
        try:
            results[name] = _processed(raw, name, info, instance_data, instance_dir)
        except Exception as exc:  # the engine's own failure must not stop the boot
            built.problems.append(Problem(name, f"processing failed: {type(exc).__name__}: {exc}"))
    user = results.get("user-data")
    vendor = results.get("vendor-data")
    user_cfg = user.cloud_config if user is not None else {}
    if vendor is not None and not _vendor_enabled(user_cfg):
        built.problems.append(Problem("vendor-data", "disabled by user-data vendor_data.enabled",
                                      Level.NOTE))
        vendor = None
    for name, result in (("vendor-data", vendor), ("user-data", user)):
        if result is None:
            continue
        for problem in [*result.problems, *result.notes]:
            built.problems.append(replace(problem, where=_prefixed(name, problem.where)))
        built.config = merge_config(built.config, result.cloud_config)
        built.origins.update({k: _prefixed(name, v) for k, v in result.key_origins.items()})
        built.parts_summary[name] = result.to_json()["parts"]
    built.user_parts = list(user.parts) if user is not None else []
    built.vendor_parts = list(vendor.parts) if vendor is not None else []
    if validate and built.config:
        built.problems += validate_built(built, registry, schema_cache, extra_modules)
    return built


def validate_built(
    built: BuiltConfig,
    registry: Registry,
    schema_cache: Path | None = None,
    extra_modules: tuple[ModuleSpec, ...] = (),
) -> list[Problem]:
    """The schema's problems with ``built.config`` (advisory: no module waits for them),
    or the one problem saying why it could not be validated. Sets ``schema_checked``."""
    from bootseed.late.schema import SchemaConflictError
    from bootseed.late.schema import validate as validate_schema

    if not built.config:
        return []
    try:
        if schema_cache is not None:
            from bootseed.late.schemacache import validate_cached

            found = validate_cached(built.config, registry, built.origins,
                                    schema_cache, extra_modules)
        else:
            found = validate_schema(built.config, registry, built.origins)
    except SchemaConflictError as exc:  # a module's mistake must not stop the boot
        return [Problem("schema", f"cloud-config not validated: {exc}")]
    built.schema_checked = True
    return found


def _prefixed(origin: str, where: str) -> str:
    return where if where.startswith(origin) else f"{origin} {where}"
