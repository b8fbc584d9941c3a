"""The layers stay layers: early/ stands on contract/ only, contract/ on the standard
library only, and no bootseed modules import each other in a circle at import time.

Also: one problem type. A second dataclass shaped ``(where, message[, level])`` in
product code is the drift this contract was made to end.

The import graph is built with ``ast`` from the source folders named in setup.cfg's
``package_dir``, so it sees what the files say, not what happens to be installed.
"""

from __future__ import annotations

import ast
import configparser
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    # At module level (not in a function, not under ``if TYPE_CHECKING:``): runs on import.
    eager: bool


def package_dirs() -> dict[str, Path]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    dirs = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        name, _, folder = line.partition("=")
        dirs[name.strip()] = REPO / folder.strip()
    return dirs


def source_modules() -> dict[str, Path]:
    """Every bootseed module name -> its file."""
    modules: dict[str, Path] = {}
    for package, folder in package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


MODULES = source_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, eager: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for item in child.body:
                yield item, False
                yield from _walk(item, False)
            for item in child.orelse:
                yield item, eager
                yield from _walk(item, eager)
        else:
            yield child, eager
            yield from _walk(child, eager)


def _base(module: str, path: Path, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{name}" if name else package


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node, eager in _walk(tree, True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno, eager)
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(module, sub if sub in MODULES else base, node.lineno, eager)


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def _top(name: str) -> str:
    return name.partition(".")[0]


def _where(imp: Import) -> str:
    return f"{MODULES[imp.importer].relative_to(REPO)}:{imp.line}: imports {imp.imported}"


def test_the_source_tree_is_found() -> None:
    for name in ("bootseed.contract.problems", "bootseed.early.rootswitch",
                 "bootseed.late.runner", "bootseed.image_builder.build", "bootseed.grub"):
        assert name in MODULES
    assert any(i.imported == "bootseed.contract.actions" for i in ALL_IMPORTS)


def test_early_imports_neither_the_late_agent_nor_the_image_builder() -> None:
    # Any import, lazy ones included: the initramfs holds neither package.
    bad = [_where(i) for i in ALL_IMPORTS if i.importer.startswith("bootseed.early")
           and i.imported.startswith(("bootseed.late", "bootseed.image_builder"))]
    assert bad == []


def test_contract_imports_only_the_standard_library_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    bad = [_where(i) for i in ALL_IMPORTS if i.importer.startswith("bootseed.contract")
           and not i.imported.startswith("bootseed.contract")
           and _top(i.imported) not in allowed]
    assert bad == []


def _eager_graph() -> dict[str, set[str]]:
    """Module -> the bootseed modules importing it runs, its parent packages included."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in ALL_IMPORTS:
        if not imp.eager:
            continue
        name = imp.imported
        while name:
            if name in MODULES and name != imp.importer \
                    and not imp.importer.startswith(f"{name}."):
                graph[imp.importer].add(name)
            name = name.rpartition(".")[0]
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_at_module_level() -> None:
    assert _cycles(_eager_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _dataclass_fields(node: ast.ClassDef) -> list[str] | None:
    """The field names of a ``@dataclass`` class, None for any other class."""
    def named(dec: ast.expr) -> bool:
        target = dec.func if isinstance(dec, ast.Call) else dec
        return (isinstance(target, ast.Name) and target.id == "dataclass") or (
            isinstance(target, ast.Attribute) and target.attr == "dataclass")

    if not any(named(dec) for dec in node.decorator_list):
        return None
    return [stmt.target.id for stmt in node.body
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            and not (isinstance(stmt.annotation, ast.Subscript)
                     and isinstance(stmt.annotation.value, ast.Name)
                     and stmt.annotation.value.id == "ClassVar")]


def problem_shaped_dataclasses() -> list[str]:
    shapes = ({"where", "message"}, {"where", "message", "level"})
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = _dataclass_fields(node)
                if fields is not None and set(fields) in shapes and len(fields) == len(
                        set(fields)):
                    found.append(f"{name}.{node.name}")
    return found


def test_one_problem_type() -> None:
    assert problem_shaped_dataclasses() == ["bootseed.contract.problems.Problem"]
