"""List a package's modules by reading its directories.

The same names, in the same order, as ``pkgutil.iter_modules(package.__path__)``
for plain directories, without importing ``pkgutil`` (which pulls in
``importlib.util`` and friends) on the boot path. One job: the listing; what to
import stays with the caller.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib.machinery import all_suffixes


def _module_name(filename: str, suffixes: list[str]) -> str | None:
    """``foo.py`` / ``foo.cpython-311-x86_64-linux-gnu.so`` -> ``foo``; else None."""
    for suffix in suffixes:
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def iter_modules(paths: Iterable[str]) -> list[tuple[str, bool]]:
    """``(name, is_package)`` for every module in ``paths``; a name found in an
    earlier path hides the same name in a later one."""
    # Longest suffix first, so ".cpython-311-x86_64-linux-gnu.so" wins over ".so".
    suffixes = sorted(all_suffixes(), key=lambda s: (-len(s), s))
    found: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for path in paths:
        try:
            filenames = sorted(os.listdir(path))
        except OSError:
            continue
        for filename in filenames:
            name = _module_name(filename, suffixes)
            if name == "__init__" or name in seen:
                continue
            is_package = False
            if not name and "." not in filename:
                full = os.path.join(path, filename)
                if not os.path.isdir(full):
                    continue
                try:
                    inside = os.listdir(full)
                except OSError:
                    inside = []
                if not any(_module_name(f, suffixes) == "__init__" for f in inside):
                    continue  # a plain directory, not a package
                name, is_package = filename, True
            if name and "." not in name:
                seen.add(name)
                found.append((name, is_package))
    return found
