"""The one target root every filesystem effect of the late agent goes through.

``TargetRoot(Path("/"))`` on a booted system, ``/sysroot`` from the initramfs,
a temp dir in tests: the same module code applies to all three.

Paths are resolved the way a process chrooted into the target would see them,
but without trusting the kernel's path walk: every component is opened with
``O_NOFOLLOW`` relative to its parent directory's descriptor, and a symlink met
on the way is expanded by hand with the target as ``/`` (an absolute link
restarts at the target root, ``..`` stops at it). So a symlink planted inside
the target, to a directory, a file or nowhere, can never make a read or write
land outside it. The final component of a write is replaced, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bootseed.contract.atomicfile import atomic_write_at

# Like the kernel's MAXSYMLINKS: a loop of links ends in an error, not a hang.
MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TargetPathError(ValueError):
    """A path that would leave the target root, or cannot be resolved inside it."""


@dataclass(frozen=True)
class TargetRoot:
    root: Path = Path("/")

    @property
    def is_host(self) -> bool:
        return self.root.resolve() == Path("/")

    def path(self, inside: str | os.PathLike[str]) -> Path:
        """The host path of ``inside`` (an absolute path as the target sees it), by text.

        For display, commands run in a chroot and reads of well-known files; every
        write and every read of a file that ends up in the target goes through the
        descriptor-based methods below instead.
        """
        rel = PurePosixPath("/", os.fspath(inside))
        if ".." in rel.parts:
            raise TargetPathError(f"{inside}: '..' is not allowed in a target path")
        return self.root.joinpath(*rel.parts[1:])

    # -- descriptor-based resolution ---------------------------------------------

    @contextmanager
    def open_dir(self, inside: str | os.PathLike[str], create: bool = False,
                 mode: int = 0o755, owner: tuple[int, int] | None = None) -> Iterator[int]:
        """A descriptor of directory ``inside``, resolved within the target root.

        With ``create``, missing directories are made with ``mode`` (and ``owner`` for
        the ones made here).
        """
        fd = self._walk(_parts(inside), create, mode, owner, follow_last=True)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _parent(self, inside: str | os.PathLike[str], create: bool,
                dir_mode: int = 0o755) -> Iterator[tuple[int, str]]:
        parts = _parts(inside)
        if not parts:
            raise TargetPathError(f"{inside}: names the target root, not a file")
        with self.open_dir("/" + "/".join(parts[:-1]), create, dir_mode) as fd:
            yield fd, parts[-1]

    def _walk(self, parts: list[str], create: bool, mode: int,
              owner: tuple[int, int] | None, follow_last: bool) -> int:
        fd, _names, _rest = self._resolve(parts, create, mode, owner, follow_last, False)
        return fd

    def real_path(self, inside: str | os.PathLike[str]) -> Path:
        """The host path of ``inside`` with every symlink on the way resolved inside the
        target; components that do not exist yet are kept as given (none is followed).

        For code that hands paths to other APIs (subprocesses, Path helpers): the
        result has no symlink in it at the time of the call, so later plain path
        operations on it stay inside the target.
        """
        fd, names, rest = self._resolve(_parts(inside), False, 0o755, None, True, True)
        os.close(fd)
        return self.root.joinpath(*names, *rest)

    def _resolve(self, parts: list[str], create: bool, mode: int,
                 owner: tuple[int, int] | None, follow_last: bool,
                 stop_at_missing: bool) -> tuple[int, list[str], list[str]]:
        """Walk ``parts`` from the root: (descriptor of the last directory reached, its
        names from the root, the components left when ``stop_at_missing`` met a gap)."""
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack = [root_fd]  # descriptors from the root down; '..' pops, never past the root
        names: list[str] = []
        pending = list(parts)
        links = 0
        try:
            while pending:
                name = pending.pop(0)
                if name in ("", "."):
                    continue
                if name == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                        names.pop()
                    continue
                here = stack[-1]
                link = _readlink(name, here)
                if link is None and create:
                    try:
                        os.mkdir(name, mode, dir_fd=here)
                        if owner is not None:
                            os.chown(name, owner[0], owner[1], dir_fd=here,
                                     follow_symlinks=False)
                    except FileExistsError:
                        link = _readlink(name, here)  # raced: look again
                if link is not None and (pending or follow_last):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise TargetPathError(f"/{'/'.join(parts)}: too many symlinks")
                    if link.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names.clear()
                    pending = [p for p in link.split("/") if p] + pending
                    continue
                try:
                    stack.append(os.open(name, _DIR_FLAGS, dir_fd=here))
                    names.append(name)
                except FileNotFoundError:
                    if not stop_at_missing:
                        raise
                    return os.dup(stack[-1]), names, [name, *pending]
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        if stop_at_missing and not pending:
                            return os.dup(stack[-1]), names, [name]
                        raise TargetPathError(
                            f"/{'/'.join(parts)}: {name} is not a directory") from None
                    raise
            return os.dup(stack[-1]), names, []
        finally:
            for fd in stack:
                os.close(fd)

    # -- files -------------------------------------------------------------------

    def write(
        self,
        inside: str | os.PathLike[str],
        data: bytes | str,
        mode: int = 0o644,
        owner: tuple[int, int] | None = None,
        dir_mode: int = 0o755,
    ) -> Path:
        """Atomically write a file inside the target, creating parent directories.

        A symlink at ``inside`` itself is replaced by the file, not followed.
        """
        with self._parent(inside, create=True, dir_mode=dir_mode) as (fd, name):
            atomic_write_at(fd, name, data, mode=mode, owner=owner)
        return self.path(inside)

    def read_bytes(self, inside: str | os.PathLike[str]) -> bytes:
        """The content of a regular file inside the target (symlinks resolved within it)."""
        parts = _parts(inside)
        for _ in range(MAX_SYMLINKS + 1):
            with self._parent("/" + "/".join(parts), create=False) as (dir_fd, name):
                link = _readlink(name, dir_fd)
                if link is None:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                                 | os.O_NONBLOCK, dir_fd=dir_fd)
                    break
            # As the target sees it: relative to the link's directory, or from its root.
            base = [] if link.startswith("/") else parts[:-1]
            parts = base + [p for p in link.split("/") if p]
        else:
            raise TargetPathError(f"{inside}: too many symlinks")
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise TargetPathError(f"{inside}: not a regular file")
            return handle.read()

    def read_text(self, inside: str | os.PathLike[str], default: str | None = None) -> str:
        try:
            return self.read_bytes(inside).decode("utf-8")
        except (FileNotFoundError, NotADirectoryError):
            if default is None:
                raise
            return default

    def exists(self, inside: str | os.PathLike[str]) -> bool:
        """Whether ``inside`` names anything (a dangling symlink counts) in the target."""
        try:
            with self._parent(inside, create=False) as (fd, name):
                os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError, TargetPathError):
            return False
        return True

    def unlink(self, inside: str | os.PathLike[str]) -> None:
        with self._parent(inside, create=False) as (fd, name):
            os.unlink(name, dir_fd=fd)

    def symlink(self, inside: str | os.PathLike[str], link_text: str,
                dir_mode: int = 0o755) -> None:
        """Atomically make ``inside`` a symlink holding ``link_text`` (a name as the
        target sees it); whatever was at ``inside`` is replaced, never followed."""
        with self._parent(inside, create=True, dir_mode=dir_mode) as (fd, name):
            tmp = f".{name}.tmp-{os.getpid()}"
            try:
                os.unlink(tmp, dir_fd=fd)
            except FileNotFoundError:
                pass
            os.symlink(link_text, tmp, dir_fd=fd)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)

    def lstat(self, inside: str | os.PathLike[str]) -> os.stat_result:
        with self._parent(inside, create=False) as (fd, name):
            return os.stat(name, dir_fd=fd, follow_symlinks=False)

    def chown(self, inside: str | os.PathLike[str], uid: int, gid: int) -> None:
        with self._parent(inside, create=False) as (fd, name):
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)


def _parts(inside: str | os.PathLike[str]) -> list[str]:
    return [p for p in PurePosixPath("/", os.fspath(inside)).parts[1:]]


def _readlink(name: str, dir_fd: int) -> str | None:
    """The link text when ``name`` is a symlink, None when it is anything else or missing."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return None
        raise
