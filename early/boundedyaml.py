"""YAML from untrusted input, bounded in size and depth before anything is built.

Both stages read YAML someone else wrote: meta-data (early, when its small
parser gives up, and ``bootseed seed fetch``/``run`` on the real root) and
user-data/vendor-data (the late engine). All of it goes through these checks:

- a large document's parser events are streamed first (libyaml's parser is
  iterative), so more than ``max_nodes`` nodes or nesting deeper than
  ``max_depth`` is refused before a node tree is held in memory, and libyaml's
  recursive composer never sees a document deep enough to overflow the C stack;
- the composed node graph is then measured as if every alias were copied out,
  so an alias bomb ("billion laughs") is refused before it is constructed.

PyYAML is imported only when a function here runs: this module stays importable
(and ``ImportError`` is the answer) where only the standard library is, as in
the initramfs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml
    from yaml.nodes import Node

# A node costs the engine, the schema check and the modules ~10-20 us and a few
# hundred bytes all told; 200k nodes is far beyond any real cloud-config or
# meta-data (a 5,000-package list is 5,000) and still a few seconds at worst.
DEFAULT_MAX_NODES = 200_000
DEFAULT_MAX_DEPTH = 100
# Below this many characters a document can neither nest deep enough to matter
# nor hold many nodes without aliases (which the graph check counts).
SHALLOW_TEXT = 4096


class YamlLimitError(ValueError):
    """The document is well-formed but too deep or too large once aliases expand."""


def safe_loader() -> type[yaml.SafeLoader]:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@contextmanager
def composed(
    text: str, max_nodes: int = DEFAULT_MAX_NODES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Iterator[tuple[Any, Node | None, int]]:
    """The document's node graph, checked against both caps before anything is built:
    ``(loader, node or None for an empty document, expanded node count)``. The loader
    constructs from the node and is disposed afterwards."""
    if len(text) > SHALLOW_TEXT:
        scan_events(text, max_nodes, max_depth)
    loader = safe_loader()(text)
    try:
        node = loader.get_single_node()
        count = 0 if node is None else expanded_size(node, max_nodes, max_depth)
        yield loader, node, count
    finally:
        loader.dispose()


def load_bounded(
    text: str, *, max_nodes: int = DEFAULT_MAX_NODES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """One YAML document, safely; raises ``yaml.YAMLError``, ``YamlLimitError``,
    ``ValueError`` (e.g. an integer beyond Python's digit limit), or ``ImportError``
    without PyYAML."""
    with composed(text, max_nodes, max_depth) as (loader, node, _count):
        if node is None:
            return None
        data = loader.construct_document(node)
    for path in long_integers(data)[:1]:
        raise YamlLimitError(
            f"integer at {path_text(path) or 'the top'} has more than "
            f"{sys.get_int_max_str_digits()} digits"
        )
    return data


def scan_events(text: str, max_nodes: int, max_depth: int) -> None:
    """Stream parser events for the node count and nesting depth."""
    import yaml

    loader = safe_loader()(text)
    depth = 0
    nodes = 0
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            line = event.start_mark.line + 1 if event.start_mark else "?"
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise YamlLimitError(f"more than {max_nodes} nodes (line {line})")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise YamlLimitError(f"nesting deeper than {max_depth} levels (line {line})")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def expanded_size(node: Node, max_nodes: int, max_depth: int) -> int:
    """Count nodes as if every alias were copied out; refuse cycles, depth, size."""
    sizes: dict[int, int] = {}
    heights: dict[int, int] = {}
    active: set[int] = set()
    # Iterative post-order walk: (node, depth, children_done).
    stack: list[tuple[Node, int, bool]] = [(node, 1, False)]
    while stack:
        current, depth, done = stack.pop()
        key = id(current)
        if done:
            active.discard(key)
            kids = children(current)
            total = 1 + sum(sizes[id(child)] for child in kids)
            height = 1 + max((heights[id(child)] for child in kids), default=0)
            if height > max_depth:
                raise YamlLimitError(
                    f"nesting deeper than {max_depth} levels once aliases expand "
                    f"(line {current.start_mark.line + 1})"
                )
            if total > max_nodes:
                raise YamlLimitError(
                    f"document expands to more than {max_nodes} nodes "
                    f"(aliases count each time they are used)"
                )
            sizes[key] = total
            heights[key] = height
            continue
        if key in sizes:
            continue
        if key in active:
            raise YamlLimitError(f"recursive alias at line {current.start_mark.line + 1}")
        if depth > max_depth:
            raise YamlLimitError(
                f"nesting deeper than {max_depth} levels (line {current.start_mark.line + 1})"
            )
        active.add(key)
        stack.append((current, depth, True))
        for child in children(current):
            if id(child) in active:
                raise YamlLimitError(f"recursive alias at line {child.start_mark.line + 1}")
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))
    return sizes[id(node)]


def children(node: Node) -> list[Node]:
    from yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        out: list[Node] = []
        for key_node, value_node in node.value:
            out.append(key_node)
            out.append(value_node)
        return out
    return []


def long_integers(value: Any) -> list[tuple[Any, ...]]:
    """Key paths of integers (values or mapping keys) too long for Python to write
    in decimal.

    YAML reads ``0x...`` and ``0o...`` of any length, but ``str()``, JSON and
    YAML output of an integer past ``sys.get_int_max_str_digits()`` raise
    ``ValueError`` wherever the value goes next. A container reached twice
    (an alias) is walked once.
    """
    if not sys.get_int_max_str_digits():
        return []
    found: list[tuple[Any, ...]] = []
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, (dict, list)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(item, dict) and too_long(key):
                    found.append((*path, key))  # the whole entry goes
                else:
                    stack.append((child, (*path, key)))
        elif too_long(item):
            found.append(path)
    return found


def too_long(value: Any) -> bool:
    """Whether ``value`` is an integer too long to write in decimal."""
    if not isinstance(value, int) or value.bit_length() <= 3 * sys.get_int_max_str_digits():
        return False
    try:
        str(value)
    except ValueError:
        return True
    return False


def path_text(path: tuple[Any, ...]) -> str:
    """A key path as ``a/0/b`` for messages, whatever its keys are."""
    return "/".join("<long integer>" if too_long(key) else str(key) for key in path)
