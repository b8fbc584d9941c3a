"""The GRUB environment block (``/boot/grub/grubenv``): our own reader and writer.

Format (what GRUB's ``save_env`` and ``grub-editenv`` use): exactly 1024 bytes,
starting ``# GRUB Environment Block\\n``, then ``name=value\\n`` lines, the rest
padded with ``#``. A backslash or newline inside a value is escaped with a
backslash. The size never changes because GRUB rewrites the block in place,
through the file's block list, and cannot grow a file; we update it in place too.
"""

from __future__ import annotations

import os
from pathlib import Path

from bootseed.contract.atomicfile import atomic_write

BLOCK_SIZE = 1024
HEADER = b"# GRUB Environment Block\n"


class GrubenvError(ValueError):
    """A block that is not a GRUB environment block, or values that do not fit one."""


def _unescape(raw: str) -> str:
    out: list[str] = []
    chars = iter(raw)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, ""))
        else:
            out.append(ch)
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\\n")


def parse(block: bytes, where: str = "grubenv") -> dict[str, str]:
    """The variables of a block, in order."""
    return _parse(block, where)[1]


def _parse(block: bytes, where: str) -> tuple[list[str], dict[str, str]]:
    """(comment lines after the header, variables)."""
    if not block.startswith(HEADER):
        raise GrubenvError(f"{where}: does not start with the GRUB environment block header")
    if len(block) != BLOCK_SIZE:
        raise GrubenvError(f"{where}: {len(block)} bytes; a GRUB environment block has "
                           f"{BLOCK_SIZE}")
    text = block[len(HEADER):].decode("utf-8", "replace")
    values: dict[str, str] = {}
    comments: list[str] = []
    # Split on newlines that are not escaped.
    line: list[str] = []
    lines: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            line.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "\n":
            lines.append("".join(line))
            line = []
        else:
            line.append(ch)
    for entry in lines:
        if entry.startswith("#") and not values:
            comments.append(entry)  # e.g. Debian's "do not edit" line: kept as it was
        if not entry or entry.startswith("#"):
            continue
        name, sep, value = entry.partition("=")
        if sep:
            values[name] = _unescape(value)
    return comments, values


def _valid_name(name: str) -> bool:
    return bool(name) and "=" not in name and "\n" not in name and not name.startswith("#")


def render(values: dict[str, str], comments: list[str] | tuple[str, ...] = ()) -> bytes:
    """A 1024-byte block holding ``values`` (after ``comments``, one ``#`` line each)."""
    body = bytearray(HEADER)
    for comment in comments:
        body += f"{comment}\n".encode()
    for name, value in values.items():
        if not _valid_name(name):
            raise GrubenvError(f"grubenv: bad variable name {name!r}")
        body += f"{name}={_escape(value)}\n".encode()
    if len(body) > BLOCK_SIZE:
        raise GrubenvError(f"grubenv: the variables need {len(body)} bytes; the block has "
                           f"{BLOCK_SIZE}")
    return bytes(body) + b"#" * (BLOCK_SIZE - len(body))


def read(path: Path) -> dict[str, str]:
    """The variables in ``path``; an empty dict when the file does not exist."""
    try:
        block = path.read_bytes()
    except FileNotFoundError:
        return {}
    return parse(block, str(path))


def update(path: Path, changes: dict[str, str | None]) -> dict[str, str]:
    """Set (or with ``None`` unset) variables, keeping every other one.

    An existing block is rewritten in place (same inode, same disk blocks) and
    synced: GRUB reads and writes it through its block list and never replays
    the ext4 journal, so after a crash a replaced file could leave GRUB looking
    at the old inode's freed blocks, and ``save_env`` writing into them. A new
    file (or one that is not a valid block) is created by rename instead.
    """
    try:
        block = path.read_bytes()
    except FileNotFoundError:
        block = None
    comments: list[str] = []
    values: dict[str, str] = {}
    if block is not None:
        comments, values = _parse(block, str(path))
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    data = render(values, comments)
    if block is not None and not path.is_symlink():
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if os.pwrite(fd, data, 0) != len(data):
                raise GrubenvError(f"{path}: short write")
            os.fsync(fd)
        finally:
            os.close(fd)
        return values
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, mode=0o644)
    return values
