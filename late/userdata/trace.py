"""Where each value of a merged cloud-config came from.

A ``Trace`` tree mirrors the shape of a config value: dict values have a dict
of child traces, lists a list of them. Merging and JSON patching move traces
exactly as they move values, so after all parts are applied every key path
still knows its part and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KeyPath = tuple[Any, ...]


@dataclass
class Trace:
    loc: str
    kids: dict[Any, Trace] | list[Trace] | None = None


def build(value: Any, marks: dict[KeyPath, int], where: str, path: KeyPath = ()) -> Trace:
    """The trace of a freshly loaded document: each key gets ``where line N``."""
    line = marks.get(path)
    loc = f"{where} line {line}" if line is not None else where
    if isinstance(value, dict):
        return Trace(loc, {k: build(v, marks, where, (*path, k)) for k, v in value.items()})
    if isinstance(value, list):
        return Trace(loc, [build(v, marks, where, (*path, i)) for i, v in enumerate(value)])
    return Trace(loc)


def uniform(value: Any, loc: str) -> Trace:
    """Every key of ``value`` attributed to ``loc`` (values a JSON patch adds)."""
    if isinstance(value, dict):
        return Trace(loc, {k: uniform(v, loc) for k, v in value.items()})
    if isinstance(value, list):
        return Trace(loc, [uniform(v, loc) for v in value])
    return Trace(loc)


def from_flat(value: Any, origins: dict[KeyPath, str], default: str, path: KeyPath = ()) -> Trace:
    """Rebuild a trace from ``UserDataResult.key_origins``."""
    loc = origins.get(path, default)
    if isinstance(value, dict):
        return Trace(loc, {k: from_flat(v, origins, loc, (*path, k)) for k, v in value.items()})
    if isinstance(value, list):
        return Trace(loc, [from_flat(v, origins, loc, (*path, i)) for i, v in enumerate(value)])
    return Trace(loc)


def flatten(trace: Trace, path: KeyPath = (), out: dict[KeyPath, str] | None = None) -> dict:
    """``{key_path: location}`` for every key and list item below the root."""
    result: dict[KeyPath, str] = {} if out is None else out
    if isinstance(trace.kids, dict):
        items: list[tuple[Any, Trace]] = list(trace.kids.items())
    elif isinstance(trace.kids, list):
        items = list(enumerate(trace.kids))
    else:
        return result
    for key, child in items:
        child_path = (*path, key)
        result[child_path] = child.loc
        flatten(child, child_path, result)
    return result


def kid(trace: Trace | None, key: Any) -> Trace | None:
    if trace is None or trace.kids is None:
        return None
    if isinstance(trace.kids, dict):
        return trace.kids.get(key)
    if isinstance(key, int) and 0 <= key < len(trace.kids):
        return trace.kids[key]
    return None
