"""The one target root every filesystem effect of the late agent goes through.

``TargetRoot(Path("/"))`` on a booted system, ``/sysroot`` from the initramfs,
a temp dir in tests: the same module code applies to all three.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bootseed.contract.atomicfile import atomic_write


class TargetPathError(ValueError):
    """A path that would leave the target root."""


@dataclass(frozen=True)
class TargetRoot:
    root: Path = Path("/")

    @property
    def is_host(self) -> bool:
        return self.root.resolve() == Path("/")

    def path(self, inside: str | os.PathLike[str]) -> Path:
        """The host path of ``inside`` (an absolute path as the target sees it)."""
        rel = PurePosixPath("/", os.fspath(inside))
        if ".." in rel.parts:
            raise TargetPathError(f"{inside}: '..' is not allowed in a target path")
        return self.root.joinpath(*rel.parts[1:])

    def write(
        self,
        inside: str | os.PathLike[str],
        data: bytes | str,
        mode: int = 0o644,
        owner: tuple[int, int] | None = None,
        dir_mode: int = 0o755,
    ) -> Path:
        """Atomically write a file inside the target, creating parent directories."""
        host = self.path(inside)
        host.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
        atomic_write(host, data, mode=mode)
        if owner is not None:
            os.chown(host, owner[0], owner[1])
        return host

    def read_text(self, inside: str | os.PathLike[str], default: str | None = None) -> str:
        try:
            return self.path(inside).read_text(encoding="utf-8")
        except FileNotFoundError:
            if default is None:
                raise
            return default
