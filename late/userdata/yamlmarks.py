"""Safe YAML loading that remembers the line of every key and list item.

``load_with_marks(text)`` returns the loaded value and ``{key_path: line}``
where a key path is a tuple of str/int (``("users", 0, "name")``) and lines
are 1-based. Before composing a large document it streams the parser's
events, so more than ``max_nodes`` nodes or nesting deeper than ``max_depth``
is refused before a node tree is held in memory (and libyaml's recursive
composer never sees a document deep enough to overflow the C stack). Before
constructing anything it checks the node graph: an expanded size (aliases
counted every time they are used) beyond ``max_nodes`` is refused, so a
"billion laughs" document cannot exhaust time or memory.
"""

from __future__ import annotations

from typing import Any

import yaml
from bootseed.late.userdata.types import DEFAULT_MAX_NODES
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml composes recursively in C; below this many characters a document
# cannot nest deep enough to matter, so the extra depth scan is skipped.
_SHALLOW_TEXT = 4096

DEFAULT_MAX_DEPTH = 100

KeyPath = tuple[Any, ...]


class YamlLimitError(ValueError):
    """The document is well-formed but too deep or too large once aliases expand."""


def load_with_marks(
    text: str,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[Any, dict[KeyPath, int]]:
    """Load one YAML document safely; raise ``yaml.YAMLError`` or ``YamlLimitError``."""
    data, marks, _ = load_counted(text, max_nodes=max_nodes, max_depth=max_depth)
    return data, marks


def load_counted(
    text: str,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[Any, dict[KeyPath, int], int]:
    """Like ``load_with_marks`` and also the expanded node count (for a shared cap)."""
    if len(text) > _SHALLOW_TEXT:
        _scan_events(text, max_nodes, max_depth)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, 0
        count = expanded_size(node, max_nodes, max_depth)
        data = loader.construct_document(node)
        marks: dict[KeyPath, int] = {}
        _collect(loader, node, data, (), marks)
        return data, marks, count
    finally:
        loader.dispose()


def _scan_events(text: str, max_nodes: int, max_depth: int) -> None:
    """Stream parser events (libyaml's parser is iterative) for node count and depth."""
    loader = _Loader(text)
    depth = 0
    nodes = 0
    try:
        while True:
            event = loader.get_event()
            if event is None or isinstance(event, yaml.StreamEndEvent):
                return
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise YamlLimitError(
                        f"document has more than {max_nodes} nodes "
                        f"(line {event.start_mark.line + 1 if event.start_mark else '?'})"
                    )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
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
            kids = _children(current)
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
        for child in _children(current):
            if id(child) in active:
                raise YamlLimitError(f"recursive alias at line {child.start_mark.line + 1}")
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))
    return sizes[id(node)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        out: list[Node] = []
        for key_node, value_node in node.value:
            out.append(key_node)
            out.append(value_node)
        return out
    return []


def _collect(
    loader: yaml.SafeLoader, node: Node, data: Any, path: KeyPath, marks: dict[KeyPath, int]
) -> None:
    if isinstance(node, MappingNode) and isinstance(data, dict):
        # After construction merge keys ("<<") are flattened into node.value;
        # for a repeated key the last occurrence is the one the dict holds.
        last: dict[Any, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            try:
                key = loader.construct_object(key_node, deep=True)
                hash(key)
            except (yaml.YAMLError, TypeError):
                continue
            last[key] = (key_node, value_node)
        for key, (key_node, value_node) in last.items():
            if key not in data:
                continue
            child = (*path, key)
            marks[child] = key_node.start_mark.line + 1
            _collect(loader, value_node, data[key], child, marks)
    elif isinstance(node, SequenceNode) and isinstance(data, list):
        for index, (item_node, item) in enumerate(zip(node.value, data, strict=False)):
            child = (*path, index)
            marks[child] = item_node.start_mark.line + 1
            _collect(loader, item_node, item, child, marks)
