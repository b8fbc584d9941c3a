"""bootseed's cloud-config JSON schema, assembled from the modules' fragments,
and validation that names the YAML line of every problem.

Unknown top-level keys are warnings (a config written for cloud-init may use
modules bootseed lacks); schema violations are errors. Neither stops the run:
the problems go to the status and the modules still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.registry import Registry

_MODULE_ENTRY: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "array",
            "minItems": 1,
            "prefixItems": [{"type": "string"}, {"type": "string"}],
        },
        {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "frequency": {"type": "string"}},
        },
    ]
}

# Keys the runner itself reads (not a module).
RUNNER_PROPERTIES: dict[str, Any] = {
    "cloud_init_modules": {"type": "array", "items": _MODULE_ENTRY},
    "cloud_config_modules": {"type": "array", "items": _MODULE_ENTRY},
    "cloud_final_modules": {"type": "array", "items": _MODULE_ENTRY},
    # Merge directives are consumed by the user-data engine; harmless if left in.
    "merge_how": {},
    "merge_type": {},
}

_MAX_MESSAGE = 240


def build_schema(registry: Registry) -> dict[str, Any]:
    properties: dict[str, Any] = dict(RUNNER_PROPERTIES)
    defs: dict[str, Any] = {}
    for spec in registry.all_specs():
        properties.update(spec.schema.get("properties") or {})
        defs.update(spec.schema.get("$defs") or {})
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://bootseed.invalid/schemas/cloud-config.json",
        "title": "bootseed cloud-config",
        "type": "object",
        "properties": properties,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def locate(path: tuple[Any, ...], origins: Mapping[tuple[Any, ...], str]) -> str:
    """Where ``path`` came from: the nearest ancestor with a known origin, plus the key."""
    dotted = _dotted(path)
    for cut in range(len(path), -1, -1):
        origin = origins.get(tuple(path[:cut]))
        if origin is not None:
            return f"{origin}: {dotted}" if dotted else origin
    return dotted or "cloud-config"


def validate(
    cfg: object,
    registry: Registry,
    origins: Mapping[tuple[Any, ...], str] | None = None,
    schema: dict[str, Any] | None = None,
) -> list[Problem]:
    """Every problem of ``cfg``; ``schema``, if given, is ``build_schema(registry)``."""
    import jsonschema  # only when there is something to validate: it is slow to import

    origins = origins or {}
    if schema is None:
        schema = build_schema(registry)
    validator = jsonschema.Draft202012Validator(schema)
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.path]):
        path = tuple(error.absolute_path)
        problems.append(Problem(locate(path, origins), _message(error), Level.ERROR))
    if isinstance(cfg, dict):
        known = schema["properties"]
        for key in cfg:
            if key not in known:
                problems.append(Problem(
                    locate((key,), origins),
                    f"unknown key {key!r}: no bootseed module uses it", Level.WARNING))
    return problems


def _message(error: Any) -> str:
    message = str(error.message)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return message


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
