"""bootseed's cloud-config JSON schema, assembled from the modules' fragments,
and validation that names the YAML line of every problem.

Each top-level key has one owner: the runner (the module lists, merge
directives) or exactly one module; two modules claiming a key is refused
(``SchemaConflictError``), since one fragment would silently replace the other.
A module may still read or be activated by a key another module owns (e.g.
``write_files_deferred`` and ``write_files``).

Unknown top-level keys are warnings (a config written for cloud-init may use
modules bootseed lacks); schema violations are errors. Two keywords of bootseed's
own (``lint``) add warnings for unknown keys inside entries that ask for it (a
``users`` entry) and notes for forms cloud-init's runtime accepts but its schema
does not. Neither stops the run:
the problems go to the status and the modules still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.outputredirect import SCHEMA as OUTPUT_SCHEMA
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

# The owner named for RUNNER_PROPERTIES; parenthesised because it is not a module.
RUNNER_OWNER = "(runner)"

# Keys the runner itself reads (not a module).
RUNNER_PROPERTIES: dict[str, Any] = {
    "cloud_init_modules": {"type": "array", "items": _MODULE_ENTRY},
    "cloud_config_modules": {"type": "array", "items": _MODULE_ENTRY},
    "cloud_final_modules": {"type": "array", "items": _MODULE_ENTRY},
    # Where the agent's stdout/stderr go per stage (bootseed.late.outputredirect).
    "output": OUTPUT_SCHEMA,
    # Merge directives are consumed by the user-data engine; harmless if left in.
    "merge_how": {},
    "merge_type": {},
}

_MAX_MESSAGE = 240


class SchemaConflictError(ValueError):
    """Two owners claim one top-level key (or one ``$defs`` name)."""


@dataclass(frozen=True)
class _Fragments:
    properties: dict[str, Any]
    defs: dict[str, Any]
    # top-level key -> module name (or RUNNER_OWNER)
    owners: dict[str, str]


def _collect(registry: Registry) -> _Fragments:
    found = _Fragments(dict(RUNNER_PROPERTIES), {}, dict.fromkeys(RUNNER_PROPERTIES, RUNNER_OWNER))
    def_owners: dict[str, str] = {}
    for spec in registry.all_specs():
        for key, fragment in (spec.schema.get("properties") or {}).items():
            _claim(found.owners, f"key {key!r}", key, spec.name,
                   "one module owns it, the other may still read it")
            found.properties[key] = fragment
        for name, fragment in (spec.schema.get("$defs") or {}).items():
            _claim(def_owners, f"$defs name {name!r}", name, spec.name, "rename one")
            found.defs[name] = fragment
    return found


def _claim(owners: dict[str, str], what: str, key: str, module: str, hint: str) -> None:
    first = owners.setdefault(key, module)
    if first != module:
        raise SchemaConflictError(f"schema {what} is claimed by both {first} and {module}: {hint}")


def key_owners(registry: Registry) -> dict[str, str]:
    """Every top-level key of the schema and its owner: a module name or RUNNER_OWNER."""
    return _collect(registry).owners


def build_schema(registry: Registry) -> dict[str, Any]:
    """The assembled schema; raises SchemaConflictError when two owners claim a key."""
    found = _collect(registry)
    properties, defs = found.properties, found.defs
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
        if error.validator in ("oneOf", "anyOf") and error.context:
            # Name the deepest place that went wrong (users[0].plain_text_passwd), not
            # just the key whose alternatives all failed.
            error = _deepest(error)
        path = tuple(error.absolute_path)
        problems.append(Problem(locate(path, origins), _message(error), Level.ERROR))
    if isinstance(cfg, dict):
        known = schema["properties"]
        for key in cfg:
            if key not in known:
                problems.append(Problem(
                    locate((key,), origins),
                    f"unknown key {key!r}: no bootseed module uses it", Level.WARNING))
    problems += lint(cfg, schema, origins)
    return problems


# bootseed's own schema keywords (JSON Schema ignores keywords it does not know):
# on an object, UNKNOWN_KEYS: "warn" reports keys not in its properties as warnings;
# on one alternative of a oneOf, NOTE: "text" is a note for a value in that form
# (what cloud-init's runtime accepts but its schema does not).
UNKNOWN_KEYS = "x-unknown-keys"
NOTE = "x-note"


def lint(cfg: object, schema: dict[str, Any],
         origins: Mapping[tuple[Any, ...], str] | None = None) -> list[Problem]:
    """The warnings and notes of the UNKNOWN_KEYS and NOTE keywords in ``schema``."""
    found: list[Problem] = []
    top = schema.get("properties") or {}
    _lint(cfg, schema, (), origins or {}, set(top), found)
    return found


def _lint(value: Any, schema: Any, path: tuple[Any, ...],
          origins: Mapping[tuple[Any, ...], str], top_keys: set[str],
          found: list[Problem]) -> None:
    if not isinstance(schema, dict):
        return
    note = schema.get(NOTE)
    if isinstance(note, str):
        found.append(Problem(locate(path, origins), note, Level.NOTE))
    for alternative in schema.get("oneOf") or []:
        if _shape_fits(value, alternative):
            _lint(value, alternative, path, origins, top_keys, found)
            break
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key in value:
                _lint(value[key], sub, (*path, key), origins, top_keys, found)
        if schema.get(UNKNOWN_KEYS) == "warn":
            for key in value:
                if key not in properties:
                    found.append(Problem(locate((*path, key), origins),
                                         _unknown_key(str(key), properties, top_keys),
                                         Level.WARNING))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _lint(item, schema["items"], (*path, index), origins, top_keys, found)


def _shape_fits(value: Any, schema: Any) -> bool:
    """Whether ``value`` has the JSON type ``schema`` asks for (the alternative meant)."""
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = [kind] if isinstance(kind, str) else list(kind)
    actual = _json_type(value)
    return actual in kinds or (actual == "integer" and "number" in kinds)


def _unknown_key(key: str, properties: Mapping[str, Any], top_keys: set[str]) -> str:
    import difflib

    message = f"unknown key {key!r}"
    underscored = key.replace("-", "_")
    if underscored != key and underscored in properties:
        return (f"{message}: the schema spells it {underscored!r} (bootseed reads this "
                "spelling as that one; cloud-init deprecates it)")
    if key in top_keys:
        return f"{message}: it is a top-level key, not one of this entry; ignored here"
    close = difflib.get_close_matches(underscored, list(properties), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{message}: not a key of this entry, ignored{hint}"


def _deepest(error: Any) -> Any:
    """The error among ``error``'s alternatives with the longest path (the first on a tie)."""
    best = error
    stack = list(error.context or ())
    while stack:
        sub = stack.pop(0)
        if len(sub.absolute_path) > len(best.absolute_path):
            best = sub
        stack.extend(sub.context or ())
    return best


def _message(error: Any) -> str:
    """What rule the value at the reported place breaks, in words from the schema only.

    jsonschema's own messages quote the offending value (a whole ``write_files`` entry
    with its content, an integer password); these messages end up in the 0644
    status.json and result.json, so they name the place and the rule, never the value.
    """
    rule, want = error.validator, error.validator_value
    if rule == "type":
        types = [want] if isinstance(want, str) else list(want)
        message = f"must be of type {' or '.join(types)}, not {_json_type(error.instance)}"
    elif rule == "enum":
        message = f"must be one of {', '.join(repr(v) for v in want)}"
    elif rule == "const":
        message = f"must be {want!r}"
    elif rule == "required":
        missing = [k for k in want if isinstance(error.instance, dict) and k not in error.instance]
        message = f"{', '.join(repr(k) for k in missing) or 'a required key'} is required"
    elif rule == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = sorted(str(k) for k in error.instance if k not in known)
        message = f"unexpected key(s): {', '.join(extra)}"
    elif rule in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum",
                  "exclusiveMinimum", "exclusiveMaximum", "minProperties", "maxProperties"):
        message = f"breaks {rule} {want!r}"
    elif rule == "pattern":
        message = f"does not match the pattern {want!r}"
    elif rule in ("oneOf", "anyOf"):
        message = f"matches none of the allowed forms ({_forms(want)})"
    else:
        message = f"does not satisfy the schema rule {rule!r}"
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return message


def _json_type(value: object) -> str:
    for name, kinds in (("boolean", bool), ("integer", int), ("number", float),
                        ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, kinds):
            return name
    return "null" if value is None else type(value).__name__


def _forms(schemas: Any) -> str:
    names = []
    for sub in schemas if isinstance(schemas, list) else []:
        kind = sub.get("type") if isinstance(sub, dict) else None
        if isinstance(kind, str):
            names.append(f"{kind} {sub['const']!r}" if "const" in sub else kind)
        else:
            names.append("other")
    return ", ".join(names) or "see the schema"


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
