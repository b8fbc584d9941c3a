"""Safe YAML loading that remembers the line of every key and list item.

``load_with_marks(text)`` returns the loaded value and ``{key_path: line}``
where a key path is a tuple of str/int (``("users", 0, "name")``) and lines
are 1-based. The document is bounded exactly as ``contract.boundedyaml``
bounds every untrusted YAML: node count and depth while streaming, then the
node graph with aliases expanded, all before anything is constructed.
"""

from __future__ import annotations

from typing import Any

import yaml
from bootseed.early.boundedyaml import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_NODES,
    YamlLimitError,
    composed,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["YamlLimitError", "load_counted", "load_with_marks"]

KeyPath = tuple[Any, ...]


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
    with composed(text, max_nodes, max_depth) as (loader, node, count):
        if node is None:
            return None, {}, 0
        data = loader.construct_document(node)
        marks: dict[KeyPath, int] = {}
        _collect(loader, node, data, (), marks)
        return data, marks, count


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
