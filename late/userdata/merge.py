"""cloud-init's cloud-config merging: ``dict(...)+list(...)+str(...)`` merger chains.

Public use (the late runner merging vendor-data, user-data and system config)::

    merged = merge_config(base, overlay)               # cloud-init's default
    merged = merge_config(base, overlay, "list(append)+dict(recurse_array)+str()")

``overlay`` wins where the chain says "replace". Neither input is modified;
the result may share unchanged sub-values with them.

Folding many parts (the engine) passes one ``Owned`` through every merge: a
dict or list the fold copied is its own and grows in place afterwards, so
merging N parts costs the size of the parts, not N times the size of the
result (``list(append)`` over 20,000 parts was quadratic).

Semantics (as cloud-init's mergers):

- The chain picks, for the type of the *existing* value, the first merger that
  handles it (``dict`` for mappings, ``list`` for lists, ``str`` for strings);
  a type no merger handles keeps the existing value.
- ``dict``: ``no_replace`` (default) keeps existing keys, but always recurses
  into nested mappings; ``replace`` takes the new value wholesale; options
  ``recurse_array`` (alias ``recurse_list``) and ``recurse_str`` recurse into
  lists/strings instead; ``allow_delete`` lets a new ``null`` delete the key.
- ``list``: ``replace`` (default) replaces item by item (a non-list replaces
  the list), ``append``/``prepend`` concatenate, ``no_replace`` keeps existing
  items; ``recurse_dict``/``recurse_array``/``recurse_str`` merge same-index
  items instead of replacing them.
- ``str``: replaced, or concatenated with ``append``.

cloud-init's default chain for user-data parts is ``dict(replace)+list()+str()``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bootseed.late.userdata.trace import Trace, kid

DEFAULT_HOW = "dict(replace)+list()+str()"
_NAMES = ("dict", "list", "str")
_ITEM = re.compile(r"^([a-z_][a-z0-9_]*)\((.*?)\)$")


class MergeSpecError(ValueError):
    pass


Spec = list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Mergers:
    """The options of the first ``dict``/``list``/``str`` merger in a chain (None = absent)."""

    dict_opts: frozenset[str] | None
    list_opts: frozenset[str] | None
    str_opts: frozenset[str] | None

    @classmethod
    def from_spec(cls, spec: Spec) -> Mergers:
        found: dict[str, frozenset[str]] = {}
        for name, opts in spec:
            found.setdefault(name, frozenset(opts))
        return cls(found.get("dict"), found.get("list"), found.get("str"))

    @classmethod
    def parse(cls, how: Any) -> Mergers:
        return cls.from_spec(parse_how(how))


def parse_how(how: Any) -> Spec:
    """A ``merge_how`` value (string chain or list of {name, settings}) as a spec list."""
    if how is None:
        return []
    if isinstance(how, str):
        return _parse_string(how)
    if not isinstance(how, list):
        raise MergeSpecError(f"merge_how must be a string or a list, not {type(how).__name__}")
    spec: Spec = []
    for item in how:
        if isinstance(item, dict):
            name = item.get("name")
            settings = item.get("settings", [])
        elif isinstance(item, (list, tuple)) and item:
            name, settings = item[0], list(item[1:])
        else:
            raise MergeSpecError(f"merge_how entry {item!r} is neither a mapping nor a list")
        if not isinstance(name, str) or not name.strip():
            raise MergeSpecError(f"merge_how entry {item!r} has no name")
        if isinstance(settings, str):
            settings = [settings]
        if not isinstance(settings, list) or not all(isinstance(s, str) for s in settings):
            raise MergeSpecError(f"merge_how settings of {name!r} must be a list of strings")
        spec.append((_known(name), [s.strip().lower() for s in settings if s.strip()]))
    return spec


def _parse_string(how: str) -> Spec:
    spec: Spec = []
    for raw in how.split("+"):
        text = raw.strip().lower().replace("-", "_")
        if not text:
            continue
        match = _ITEM.match(text)
        if not match:
            raise MergeSpecError(f"merger {raw.strip()!r} is not of the form name(options)")
        name, opts = match.groups()
        spec.append((_known(name), [o.strip() for o in opts.split(",") if o.strip()]))
    return spec


def _known(name: str) -> str:
    clean = name.strip().lower().replace("-", "_")
    if clean.startswith("m_"):
        clean = clean[2:]
    if clean not in _NAMES:
        raise MergeSpecError(f"unknown merger {name!r} (known: dict, list, str)")
    return clean


def pop_merge_how(config: dict[str, Any]) -> Any:
    """Remove and return the part's own merge directive (``merge_how``, else ``merge_type``)."""
    how = config.pop("merge_how", None)
    other = config.pop("merge_type", None)
    return how if how is not None else other


DEFAULT = Mergers.parse(DEFAULT_HOW)


def merge_config(base: dict[str, Any], overlay: dict[str, Any], how: Any = None) -> dict[str, Any]:
    """Merge ``overlay`` onto ``base`` with chain ``how`` (default: cloud-init's).

    Raises ``MergeSpecError`` for a malformed ``how``.
    """
    mergers = DEFAULT if how is None else Mergers.parse(how)
    value, _ = merge_traced(base, overlay, mergers, None, None)
    return value if isinstance(value, dict) else dict(base)


class Owned:
    """Containers (values and trace kids) a merge fold created and may mutate.

    Holds a reference to each, so an id can never be reused by another object
    while it is listed.
    """

    def __init__(self) -> None:
        self._kept: dict[int, object] = {}

    def owns(self, container: object) -> bool:
        return self._kept.get(id(container)) is container

    def claim(self, container: _C) -> _C:
        self._kept[id(container)] = container
        return container


_C = TypeVar("_C")


def merge_traced(
    old: Any,
    new: Any,
    mergers: Mergers,
    old_t: Trace | None,
    new_t: Trace | None,
    owned: Owned | None = None,
) -> tuple[Any, Trace | None]:
    """Merge values and their traces (pass None traces when origins do not matter).

    With ``owned``, containers it lists may be changed in place and the copies
    made are added to it; without, no input is changed.
    """
    return _Run(mergers, owned).merge(old, new, old_t, new_t)


class _Run:
    def __init__(self, mergers: Mergers, owned: Owned | None) -> None:
        self.m = mergers
        self.owned = owned

    def _own(self, value: _C, copy: Callable[[_C], _C]) -> _C:
        if self.owned is None:
            return copy(value)
        return value if self.owned.owns(value) else self.owned.claim(copy(value))

    def _own_traces(self, trace: Trace | None, length: int) -> list[Trace] | None:
        """The trace kids of a list being changed, one per item, owned by the fold."""
        if trace is None:
            return None
        kids = trace.kids
        if isinstance(kids, list) and len(kids) == length:
            return self._own(kids, lambda k: _fill(k, length, trace))
        fresh = _fill(None, length, trace)
        return self.owned.claim(fresh) if self.owned is not None else fresh

    def merge(
        self, old: Any, new: Any, old_t: Trace | None, new_t: Trace | None
    ) -> tuple[Any, Trace | None]:
        if isinstance(old, dict) and self.m.dict_opts is not None:
            return self._dict(old, new, old_t, new_t, self.m.dict_opts)
        if isinstance(old, list) and self.m.list_opts is not None:
            return self._list(old, new, old_t, new_t, self.m.list_opts)
        if isinstance(old, str) and self.m.str_opts is not None:
            if "append" in self.m.str_opts and isinstance(new, str):
                return old + new, new_t
            return new, new_t
        return old, old_t

    def _dict(
        self,
        old: dict[Any, Any],
        new: Any,
        old_t: Trace | None,
        new_t: Trace | None,
        opts: frozenset[str],
    ) -> tuple[Any, Trace | None]:
        if not isinstance(new, dict):
            return old, old_t
        replace = "replace" in opts
        recurse_array = "recurse_array" in opts or "recurse_list" in opts
        recurse_str = "recurse_str" in opts
        allow_delete = "allow_delete" in opts
        result = self._own(old, dict)
        traces: dict[Any, Trace] | None = None
        if old_t is not None:
            traces = self._own(old_t.kids, dict) if isinstance(old_t.kids, dict) else {}
        for key, value in new.items():
            value_t = kid(new_t, key)
            if key not in result:
                result[key] = value
                _put(traces, key, value_t)
                continue
            if value is None and allow_delete:
                del result[key]
                if traces is not None:
                    traces.pop(key, None)
                continue
            current = result[key]
            current_t = traces.get(key) if traces is not None else None
            if replace:
                merged, merged_t = value, value_t
            elif (
                (isinstance(value, list) and recurse_array)
                or (isinstance(value, str) and recurse_str)
                or isinstance(value, dict)
            ):
                merged, merged_t = self.merge(current, value, current_t, value_t)
            else:
                merged, merged_t = current, current_t
            result[key] = merged
            _put(traces, key, merged_t)
        return result, _node(old_t, traces)

    def _list(
        self,
        old: list[Any],
        new: Any,
        old_t: Trace | None,
        new_t: Trace | None,
        opts: frozenset[str],
    ) -> tuple[Any, Trace | None]:
        method = next(
            (m for m in ("append", "prepend", "replace", "no_replace") if m in opts), "replace"
        )
        if not isinstance(new, list):
            if method == "replace":
                return new, new_t
            if method == "no_replace":
                return old, old_t
            new, new_t = [new], (Trace(new_t.loc, [new_t]) if new_t is not None else None)
        elif method == "no_replace":
            return old, old_t
        new_traces = _list_traces(new_t, len(new))
        if method == "append":
            result = self._own(old, list)
            traces = self._own_traces(old_t, len(old))
            result.extend(new)
            if traces is not None:
                traces.extend(_fill(new_traces, len(new), old_t))
            return result, _node(old_t, traces)
        if method == "prepend":
            # Never in place: inserting at the front is linear in the list anyway.
            old_traces = _list_traces(old_t, len(old))
            return [*new, *old], _node(old_t, _join(new_traces, old_traces))
        result = self._own(old, list)
        traces = self._own_traces(old_t, len(old))
        recurse_dict = "recurse_dict" in opts
        recurse_array = "recurse_array" in opts or "recurse_list" in opts
        recurse_str = "recurse_str" in opts
        for index in range(min(len(result), len(new))):
            value = new[index]
            value_t = new_traces[index] if new_traces is not None else None
            if (
                (isinstance(value, list) and recurse_array)
                or (isinstance(value, str) and recurse_str)
                or (isinstance(value, dict) and recurse_dict)
            ):
                current_t = traces[index] if traces is not None else None
                result[index], merged_t = self.merge(result[index], value, current_t, value_t)
            else:
                result[index], merged_t = value, value_t
            if traces is not None and merged_t is not None:
                traces[index] = merged_t
        return result, _node(old_t, traces)


def _fill(traces: list[Trace] | None, length: int, parent: Trace | None) -> list[Trace]:
    """A fresh list of ``length`` traces; without ``traces``, each stands for ``parent``."""
    if traces is None:
        loc = parent.loc if parent is not None else ""
        return [Trace(loc) for _ in range(length)]
    return list(traces)


def _put(traces: dict[Any, Trace] | None, key: Any, value: Trace | None) -> None:
    if traces is not None and value is not None:
        traces[key] = value


def _node(old_t: Trace | None, kids: dict[Any, Trace] | list[Trace] | None) -> Trace | None:
    if old_t is None or kids is None:
        return None
    return Trace(old_t.loc, kids)


def _list_traces(trace: Trace | None, length: int) -> list[Trace] | None:
    if trace is None:
        return None
    if isinstance(trace.kids, list) and len(trace.kids) == length:
        return list(trace.kids)
    return [Trace(trace.loc)] * length


def _join(first: list[Trace] | None, second: list[Trace] | None) -> list[Trace] | None:
    if first is None or second is None:
        return None
    return [*first, *second]
