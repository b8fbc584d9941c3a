"""RFC 6902 JSON Patch, applied to a config and, in step, to its origin trace.

All or nothing: the patch works on a copy and the caller keeps the original
when any operation fails (``PatchError`` names the failing operation). Every
value an operation adds or copies is charged to the run's ``Budget`` (nodes)
before it is built, so doubling the config with ``copy`` stops at the cap.
"""

from __future__ import annotations

import copy
from typing import Any

from bootseed.late.userdata.budget import Budget, BudgetExceeded
from bootseed.late.userdata.trace import Trace, kid, uniform

MAX_DEPTH = 100


class PatchError(ValueError):
    pass


def parse_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise PatchError(f"path {pointer!r} is not a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"path {pointer!r} does not start with '/'")
    return [tok.replace("~1", "/").replace("~0", "~") for tok in pointer[1:].split("/")]


def apply_patch(
    doc: Any,
    patch: Any,
    trace: Trace | None = None,
    where: str = "json patch",
    budget: Budget | None = None,
    max_depth: int = MAX_DEPTH,
) -> tuple[Any, Trace | None]:
    """Return the patched copy of ``doc`` (and of ``trace``); raise ``PatchError``.

    Values deeper than ``max_depth`` are refused; with a ``budget``, every value
    added or copied is charged to its node cap and the time cap is checked
    between operations.
    """
    if not isinstance(patch, list):
        raise PatchError("a JSON patch must be a list of operations")
    root = _Doc(copy.deepcopy(doc), copy.deepcopy(trace))
    limits = _Bounds(budget, max_depth)
    for number, op in enumerate(patch, 1):
        try:
            if budget is not None:
                budget.check_time()
            _apply_one(root, op, where, limits)
        except PatchError as exc:
            raise PatchError(f"operation {number}: {exc}") from None
        except BudgetExceeded as exc:
            raise PatchError(f"operation {number}: {exc}") from None
    return root.value, root.trace


class _Bounds:
    def __init__(self, budget: Budget | None, max_depth: int) -> None:
        self.budget = budget
        self.max_depth = max_depth

    def charge(self, value: Any, below: int) -> None:
        """Charge ``value``'s nodes; refuse it if it would end deeper than ``max_depth``
        once placed ``below`` levels down."""
        count, depth = value_size(value)
        if below + depth > self.max_depth:
            raise PatchError(f"the value would nest deeper than {self.max_depth} levels")
        if self.budget is not None:
            self.budget.charge_nodes(count)


def value_size(value: Any) -> tuple[int, int]:
    """Node count and depth of a JSON-shaped value, without recursion."""
    count = 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            count += len(item)  # keys are nodes too, as in YAML
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return count, deepest


class _Doc:
    """The document root, so that a path of "" can replace the whole value."""

    def __init__(self, value: Any, trace: Trace | None) -> None:
        self.value = value
        self.trace = trace


def _apply_one(root: _Doc, op: Any, where: str, limits: _Bounds) -> None:
    if not isinstance(op, dict):
        raise PatchError(f"{op!r} is not an object")
    name = op.get("op")
    path = parse_pointer(op.get("path"))
    if name == "test":
        if "value" not in op:
            raise PatchError("test without a value")
        actual, _ = _get(root, path)
        if actual != op["value"]:
            raise PatchError(f"test failed at {op.get('path')!r}")
        return
    if name in ("add", "replace"):
        if "value" not in op:
            raise PatchError(f"{name} without a value")
        limits.charge(op["value"], len(path))
        value = copy.deepcopy(op["value"])
        value_t = uniform(value, where) if root.trace is not None else None
        if name == "replace" and path:
            _get(root, path)
            _remove(root, path)
        _add(root, path, value, value_t)
        return
    if name == "remove":
        _remove(root, path)
        return
    if name in ("move", "copy"):
        source = parse_pointer(op.get("from"))
        value, value_t = _get(root, source)
        if name == "move":
            if path[: len(source)] == source and len(path) > len(source):
                raise PatchError("cannot move a value into itself")
            _remove(root, source)
        else:
            limits.charge(value, len(path))
            value, value_t = copy.deepcopy(value), copy.deepcopy(value_t)
        _add(root, path, value, value_t)
        return
    raise PatchError(f"unknown op {name!r}")


def _container(root: _Doc, tokens: list[str]) -> tuple[Any, Trace | None]:
    value: Any = root.value
    trace = root.trace
    for token in tokens:
        value, trace = _step(value, trace, token)
    return value, trace


def _step(value: Any, trace: Trace | None, token: str) -> tuple[Any, Trace | None]:
    if isinstance(value, dict):
        if token not in value:
            raise PatchError(f"no key {token!r}")
        return value[token], kid(trace, token)
    if isinstance(value, list):
        index = _index(token, len(value), allow_end=False)
        return value[index], kid(trace, index)
    raise PatchError(f"cannot descend into a {type(value).__name__} at {token!r}")


def _index(token: str, length: int, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"{token!r} is not a list index")
    index = int(token)
    if index > length or (index == length and not allow_end):
        raise PatchError(f"index {index} is out of range")
    return index


def _get(root: _Doc, path: list[str]) -> tuple[Any, Trace | None]:
    return _container(root, path)


def _add(root: _Doc, path: list[str], value: Any, value_t: Trace | None) -> None:
    if not path:
        root.value, root.trace = value, value_t
        return
    parent, parent_t = _container(root, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
        if parent_t is not None and isinstance(parent_t.kids, dict) and value_t is not None:
            parent_t.kids[token] = value_t
    elif isinstance(parent, list):
        index = _index(token, len(parent), allow_end=True)
        parent.insert(index, value)
        if parent_t is not None and isinstance(parent_t.kids, list) and value_t is not None:
            parent_t.kids.insert(index, value_t)
    else:
        raise PatchError(f"cannot add into a {type(parent).__name__}")


def _remove(root: _Doc, path: list[str]) -> None:
    if not path:
        raise PatchError("cannot remove the whole document")
    parent, parent_t = _container(root, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"no key {token!r}")
        del parent[token]
        if parent_t is not None and isinstance(parent_t.kids, dict):
            parent_t.kids.pop(token, None)
    elif isinstance(parent, list):
        index = _index(token, len(parent), allow_end=False)
        del parent[index]
        if parent_t is not None and isinstance(parent_t.kids, list):
            del parent_t.kids[index]
    else:
        raise PatchError(f"cannot remove from a {type(parent).__name__}")
