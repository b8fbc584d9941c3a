"""Which Python modules the early stage needs, computed at initramfs build time.

A hand-kept list would rot with every new import, and :mod:`modulefinder` is too
generous for an initramfs (it follows every import inside every function of the
standard library: pydoc, unittest, tkinter, ... about 600 modules). So this walks the
import graph with :mod:`ast`:

- imports executed when a module is imported (module level, class bodies, ``try`` and
  ``if`` blocks; not ``if TYPE_CHECKING:``) are followed everywhere;
- imports inside functions are followed only within our own package and within the
  same top-level package (pyroute2's own lazy imports), because those are the ones our
  code paths actually reach; the standard library's function-level imports are helpers
  for APIs the early stage does not call;
- third-party packages are included only when asked for (``--with pyroute2``); other
  third-party imports are reported as left out (the early stage treats them as optional);
- the interpreter's own start-up modules are found by starting it, not listed.

The result is checked where it matters: the tests run the early stage's real paths in
a chroot holding only this closure (``tests/early/test_closure*.py``).

``install`` writes the modules as sourceless ``.pyc`` files (smaller than source, and
no compile at every boot) under the interpreter's standard library directory of the
destination tree, and prints the extension modules (``.so``) the initramfs hook must
copy with ``copy_exec`` so their shared libraries come along.
"""

from __future__ import annotations

import argparse
import ast
import importlib.machinery
import json
import os
import py_compile
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from bootseed.contract.cli import CliError, Program, Verb, loaded, run_program

OUR_ROOT = "bootseed"
ENTRY_PACKAGE = "bootseed.early"
# Codecs are looked up by name at run time, with no import statement to follow; the
# names in the code are found by codec_modules(). This one is named only in C:
# socket.getaddrinfo encodes every str host name with idna (even "169.254.169.254").
RUNTIME_CODECS = ("encodings.idna",)
# importlib/__init__ registers the frozen bootstrap modules under these names, so their
# source files are never loaded.
FROZEN_ALIASES = frozenset({"importlib._bootstrap", "importlib._bootstrap_external"})
# The modules of each optional package that the early stage imports lazily.
OPTIONAL_ENTRIES: dict[str, tuple[str, ...]] = {
    # Netlink only: the DHCPv4 exchange is bootseed.early.dhcp4 (standard library).
    "pyroute2": ("pyroute2.iproute.linux",),
    "blkid": ("blkid",),
}
# Packages whose __init__ the early stage deliberately skips (see bootseed.early.net).
BARE_PACKAGES = frozenset({"pyroute2"})


@dataclass
class Module:
    name: str
    origin: str | None
    kind: str  # "source", "extension", "namespace", "builtin"
    is_package: bool = False
    area: str = "stdlib"  # "stdlib", "ours", "third-party"


@dataclass
class Closure:
    modules: dict[str, Module] = field(default_factory=dict)
    unresolved: dict[str, list[str]] = field(default_factory=dict)
    left_out: dict[str, list[str]] = field(default_factory=dict)

    def files(self) -> list[Module]:
        return [m for m in self.modules.values() if m.kind in ("source", "extension")]

    def summary(self) -> dict[str, object]:
        by_area: dict[str, int] = {}
        size = 0
        for mod in self.files():
            by_area[mod.area] = by_area.get(mod.area, 0) + 1
            size += os.path.getsize(mod.origin) if mod.origin else 0
        return {"modules": len(self.modules), "files": len(self.files()), "by_area": by_area,
                "source_bytes": size, "left_out": sorted(self.left_out),
                "unresolved": sorted(self.unresolved)}


@dataclass
class ImportRef:
    name: str
    eager: bool
    optional: bool
    fromlist: tuple[str, ...] = ()


class Finder:
    def __init__(self, path: list[str], with_packages: set[str]) -> None:
        self.path = path
        self.with_packages = with_packages
        self.closure = Closure()
        self._stdlib_dirs = _stdlib_dirs()
        self._bare_paths: dict[str, list[str]] = {}

    def add(self, name: str, importer: str = "<entry>", optional: bool = False) -> Module | None:
        if name in self.closure.modules:
            return self.closure.modules[name]
        root = name.split(".")[0]
        if name in sys.builtin_module_names or _is_frozen(name) or name in FROZEN_ALIASES:
            module = Module(name=name, origin=None, kind="builtin")
            self.closure.modules[name] = module
            return module
        if "." in name:
            parent = self.add(name.rpartition(".")[0], importer, optional)
            if parent is None or not parent.is_package:
                return None
            search = self._package_path(parent)
            spec = importlib.machinery.PathFinder.find_spec(name, search)
        else:
            spec = importlib.machinery.PathFinder.find_spec(name, self.path)
        if spec is None:
            if not optional:
                self.closure.unresolved.setdefault(name, []).append(importer)
            return None
        module = self._module_from_spec(name, spec)
        if module.area == "third-party" and root not in self.with_packages:
            self.closure.left_out.setdefault(root, []).append(importer)
            return None
        if root in BARE_PACKAGES and name == root:
            # Registered without running its __init__ at run time: ship none.
            module = Module(name=name, origin=None, kind="namespace", is_package=True,
                            area=module.area)
            self._bare_paths[name] = list(spec.submodule_search_locations or [])
        self.closure.modules[name] = module
        if module.kind == "source" and module.origin:
            for ref in scan_imports(Path(module.origin), name, module.is_package):
                if ref.eager or self._follow_lazy(name, ref.name):
                    self._add_ref(ref, name)
            for codec in codec_modules(Path(module.origin)):
                self.add(codec, name, optional=True)
        return module

    def _add_ref(self, ref: ImportRef, importer: str) -> None:
        base = self.add(ref.name, importer, ref.optional)
        if base is None or not base.is_package:
            return
        for item in ref.fromlist:
            if item == "*":
                continue
            candidate = f"{ref.name}.{item}"
            spec = importlib.machinery.PathFinder.find_spec(candidate, self._package_path(base))
            if spec is not None:
                self.add(candidate, importer, ref.optional)

    def _package_path(self, module: Module) -> list[str]:
        if module.origin is None:
            if module.name in self._bare_paths:
                return self._bare_paths[module.name]
            spec = importlib.machinery.PathFinder.find_spec(module.name, self.path)
            return list(spec.submodule_search_locations or []) if spec else []
        return [str(Path(module.origin).parent)]

    def _follow_lazy(self, importer: str, target: str) -> bool:
        importer_root, target_root = importer.split(".")[0], target.split(".")[0]
        if importer_root == OUR_ROOT:
            return True
        return importer_root == target_root and importer_root in self.with_packages

    def _module_from_spec(self, name: str, spec: importlib.machinery.ModuleSpec) -> Module:
        origin = spec.origin if spec.has_location else None
        is_package = spec.submodule_search_locations is not None
        if origin is None:
            kind = "namespace"
        elif origin.endswith(".py"):
            kind = "source"
        else:
            kind = "extension"
        return Module(name=name, origin=origin, kind=kind, is_package=is_package,
                      area=self._area(name, origin, spec))

    def _area(self, name: str, origin: str | None,
              spec: importlib.machinery.ModuleSpec) -> str:
        if name.split(".")[0] == OUR_ROOT:
            return "ours"
        places = [origin] if origin else list(spec.submodule_search_locations or [])
        if any("site-packages" in p or "dist-packages" in p for p in places):
            return "third-party"
        if places and all(any(_under(p, d) for d in self._stdlib_dirs) for p in places):
            return "stdlib"
        return "third-party"


def _under(path: str, directory: str) -> bool:
    return os.path.realpath(path).startswith(os.path.realpath(directory).rstrip("/") + "/")


def _is_frozen(name: str) -> bool:
    import _imp

    return bool(_imp.is_frozen(name))


def _stdlib_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["stdlib"], paths["platstdlib"]})


def scan_imports(path: Path, module: str, is_package: bool) -> list[ImportRef]:
    """Every import statement of a module, marked eager or lazy, optional or not."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    refs: list[ImportRef] = []

    def visit(node: ast.AST, eager: bool, optional: bool) -> None:
        if isinstance(node, ast.If) and (_is_type_checking(node.test)
                                         or _is_main_guard(node.test)):
            for child in node.orelse:
                visit(child, eager, optional)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            eager = False
        if isinstance(node, ast.Try):
            guarded = any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, eager, optional or guarded)
            # An except clause is a fallback for when the body's import failed; on the
            # interpreter that built the initramfs (the one that runs it) it did not.
            for handler in node.handlers:
                visit(handler, False, True)
            for part in (node.orelse, node.finalbody):
                for child in part:
                    visit(child, eager, optional)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                refs.append(ImportRef(alias.name, eager, optional))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(node.module, node.level, package)
            if base:
                names = tuple(alias.name for alias in node.names)
                refs.append(ImportRef(base, eager, optional, names))
        for sub in ast.iter_child_nodes(node):
            visit(sub, eager, optional)

    visit(tree, True, False)
    return refs


def codec_modules(path: Path) -> list[str]:
    """Codec modules named by string literals in a module (``json`` has "utf-8-sig",
    ``http.client`` "iso-8859-1", ...): codecs are looked up by name at run time, so no
    import statement says which are needed. Multibyte (CJK) codecs are left out: they
    are large extension modules and no seed source uses them."""
    import encodings
    from encodings.aliases import aliases

    found: set[str] = set()
    tree = ast.parse(path.read_bytes(), filename=str(path))
    # Literals inside tables (locale's alias map, email.charset's charset map) are data
    # about codecs, not codecs this code decodes with.
    in_tables = {id(item) for node in ast.walk(tree)
                 if isinstance(node, (ast.Dict, ast.List, ast.Tuple, ast.Set))
                 for item in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in in_tables:
            continue
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and 2 < len(node.value) <= 20 and node.value.isascii()):
            continue
        norm = encodings.normalize_encoding(node.value).lower()
        name = aliases.get(norm, aliases.get(norm.replace(".", "_"), norm))
        if not name.replace("_", "").isalnum() or name in _CODEC_MISSES:
            continue
        spec = importlib.machinery.PathFinder.find_spec(name, encodings.__path__)
        if spec is None or spec.origin is None:
            _CODEC_MISSES.add(name)
            continue
        if b"_multibytecodec" in Path(spec.origin).read_bytes():
            continue
        found.add(f"encodings.{name}")
    return sorted(found)


_CODEC_MISSES: set[str] = set()


def _resolve_relative(name: str | None, level: int, package: str) -> str | None:
    if level == 0:
        return name
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    if name:
        base.append(name)
    return ".".join(base) or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError",
                                                    "Exception", "BaseException")
               for n in names)


def startup_modules(python: str = sys.executable) -> list[str]:
    """Modules the interpreter imports before running anything, with an empty environment
    (as in an initramfs) and the flags the init script uses. The stage is started with
    ``-m``, i.e. through runpy, whose frozen imports (importlib.util -> importlib._abc)
    are not visible to a source scan."""
    code = "import runpy, sys; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([python, "-I", "-S", "-c", code], env={}, capture_output=True,
                         text=True, check=True, timeout=60)
    return [line for line in out.stdout.split() if line and line != "__main__"]


def package_modules(package: str, path: list[str]) -> list[str]:
    """Every module file of ``package`` (discovery may import sources by name)."""
    spec = importlib.machinery.PathFinder.find_spec(package.split(".")[0], path)
    if spec is None:
        raise ImportError(f"{package} not found on {path}")
    locations = list(spec.submodule_search_locations or [])
    for part in package.split(".")[1:]:
        locations = [str(Path(loc) / part) for loc in locations if (Path(loc) / part).is_dir()]
    names: list[str] = []
    for location in locations:
        for file in sorted(Path(location).rglob("*.py")):
            rel = file.relative_to(location).with_suffix("")
            parts = [package, *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            if "__pycache__" not in rel.parts:
                names.append(".".join(parts))
    return names


def compute(with_packages: set[str], path: list[str] | None = None,
            python: str = sys.executable) -> Closure:
    search = list(path if path is not None else sys.path)
    finder = Finder(search, with_packages)
    entries = [*startup_modules(python), *RUNTIME_CODECS, *package_modules(ENTRY_PACKAGE, search)]
    for name in entries:
        finder.add(name)
    for package in sorted(with_packages):
        for name in OPTIONAL_ENTRIES.get(package, (package,)):
            if finder.add(name, optional=True) is None:
                finder.closure.left_out.setdefault(package, []).append("<not installed>")
    return finder.closure


def destination(module: Module, stdlib_dir: str) -> str:
    """Where a module goes in the initramfs: everything under the stdlib directory, which
    is on ``sys.path`` even with ``-I -S`` (no site-packages in an initramfs)."""
    assert module.origin is not None
    parts = module.name.split(".")
    if module.kind == "extension":
        if module.area == "stdlib":
            return module.origin
        return str(Path(stdlib_dir, *parts[:-1], Path(module.origin).name))
    if module.is_package:
        return str(Path(stdlib_dir, *parts, "__init__.pyc"))
    return str(Path(stdlib_dir, *parts[:-1], parts[-1] + ".pyc"))


def install(closure: Closure, dest: Path, optimize: int = 0) -> list[tuple[str, str]]:
    """Compile sources into ``dest``; return (source, target) of extension modules, which
    the caller copies with its own tool so shared libraries come along."""
    stdlib_dir = sysconfig.get_paths()["stdlib"]
    extensions: list[tuple[str, str]] = []
    for module in sorted(closure.files(), key=lambda m: m.name):
        target = destination(module, stdlib_dir)
        if module.kind == "extension":
            assert module.origin is not None
            extensions.append((module.origin, target))
            continue
        out = dest / target.lstrip("/")
        out.parent.mkdir(parents=True, exist_ok=True)
        assert module.origin is not None
        py_compile.compile(module.origin, cfile=str(out), dfile=module.origin, doraise=True,
                           optimize=optimize,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    for module in closure.modules.values():
        if module.kind == "namespace":
            (dest / stdlib_dir.lstrip("/") / Path(*module.name.split("."))).mkdir(
                parents=True, exist_ok=True)
    # The interpreter finds its prefix by this landmark; os itself is frozen.
    landmark = dest / stdlib_dir.lstrip("/") / "os.py"
    if not landmark.exists():
        landmark.write_text("# landmark for the interpreter's prefix search; os is frozen\n")
    return extensions


def _add_closure_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with", dest="with_packages", action="append", default=[],
                        metavar="PACKAGE",
                        help=f"include an optional package ({', '.join(OPTIONAL_ENTRIES)}); "
                        "skipped with a note when not installed")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--path", action="append", default=[], metavar="DIR",
                        help="search DIR before sys.path (a tree holding bootseed/early)")


def _add_install_arguments(parser: argparse.ArgumentParser) -> None:
    _add_closure_arguments(parser)
    parser.add_argument("--dest", required=True, type=Path, help="initramfs tree root")
    parser.add_argument("--optimize", type=int, default=0, choices=(0, 1, 2),
                        help="bytecode optimisation level (2 strips docstrings)")


def _compute_for(args: argparse.Namespace) -> Closure:
    try:
        return compute(set(args.with_packages), [*args.path, *sys.path])
    except (ImportError, OSError, subprocess.SubprocessError, SyntaxError) as exc:
        raise CliError(str(exc)) from None


def _run_list(args: argparse.Namespace) -> int:
    closure = _compute_for(args)
    if args.json:
        print(json.dumps({"summary": closure.summary(),
                          "modules": {n: {"kind": m.kind, "area": m.area,
                                          "origin": m.origin}
                                      for n, m in sorted(closure.modules.items())}},
                         indent=2))
    else:
        for name, module in sorted(closure.modules.items()):
            print(f"{name}\t{module.kind}\t{module.area}\t{module.origin or '-'}")
    return 0


def _run_install(args: argparse.Namespace) -> int:
    closure = _compute_for(args)
    if not args.dest.is_dir():
        raise CliError(f"--dest {args.dest}: not a directory")
    try:
        extensions = install(closure, args.dest, args.optimize)
    except (OSError, py_compile.PyCompileError) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps({"summary": closure.summary(),
                          "extensions": [{"source": s, "target": t} for s, t in extensions]},
                         indent=2))
    else:
        for source, target in extensions:
            print(f"{source} {target}")
    return 0


PROGRAM = Program(
    prog="python3 -m bootseed.early.closure",
    description="Compute (and install) the Python modules the early stage needs.",
    verbs=loaded(Verb("list", "print the closure", _add_closure_arguments, _run_list),
                 Verb("install", "write it into an initramfs tree", _add_install_arguments,
                      _run_install)),
)


def main(argv: list[str] | None = None) -> int:
    return run_program(PROGRAM, argv)


if __name__ == "__main__":
    sys.exit(main())
