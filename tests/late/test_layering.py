"""Library code in ``late/`` takes the shared types from ``bootseed.late.model``,
not from the plugin folder ``late/modules/``; only the files that load or run
plugins may import it."""

from __future__ import annotations

import ast
from pathlib import Path

import bootseed.late

LATE = Path(bootseed.late.__file__).parent
PLUGINS = "bootseed.late.modules"

# The files that may import bootseed.late.modules, and why.
PLUGIN_PLUMBING = {
    # The loader: lists the plugin package, imports module files, checks MODULE.
    "registry.py": "loads the plugins",
    # Builds each module's ModuleContext and calls its handle().
    "runner.py": "runs the plugins",
    # Both pass the runner's extra ModuleSpecs (tests, bench) on to the schema
    # verdict cache, whose key must cover their schemas.
    "userdata_flow.py": "passes extra specs to the schema cache",
    "schemacache.py": "keys the schema verdict on extra specs",
}


def _imported(tree: ast.AST, package: str) -> set[str]:
    """Absolute names of everything a file of ``package`` imports, at any depth
    (relative imports resolved; ``from a import b`` gives ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _plugin_importers() -> dict[str, set[str]]:
    found = {}
    for path in sorted(LATE.rglob("*.py")):
        rel = path.relative_to(LATE)
        if rel.parts[0] == "modules":
            continue
        package = ".".join(["bootseed.late", *rel.parts[:-1]])
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n for n in _imported(tree, package)
                 if n == PLUGINS or n.startswith(PLUGINS + ".")}
        if names:
            found[rel.as_posix()] = names
    return found


def test_only_plugin_plumbing_imports_the_plugin_folder() -> None:
    importers = _plugin_importers()
    strays = {f: sorted(n) for f, n in importers.items() if f not in PLUGIN_PLUMBING}
    assert strays == {}, "take shared types from bootseed.late.model, not the plugin folder"
    # An entry that no longer imports plugins must leave the allow-list.
    assert sorted(importers) == sorted(PLUGIN_PLUMBING)


def test_the_scan_sees_every_import_form() -> None:
    tree = ast.parse("import bootseed.late.modules.base\n"
                     "from bootseed.late import modules\n"
                     "def f():\n    from bootseed.late.modules import ssh\n")
    assert {"bootseed.late.modules.base", "bootseed.late.modules",
            "bootseed.late.modules.ssh"} <= _imported(tree, "bootseed.late")
    relative = ast.parse("from ..modules.base import Stage\nfrom .. import modules\n")
    assert _imported(relative, "bootseed.late.commands") == {
        "bootseed.late.modules.base", "bootseed.late.modules.base.Stage",
        "bootseed.late", "bootseed.late.modules"}
    assert "bootseed.late.modules" in _imported(ast.parse("from .modules import x\n"),
                                                "bootseed.late")
