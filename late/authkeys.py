"""``~/.ssh/authorized_keys``: parse lines, merge new keys in, write it for a user.

A key is identified by its type and base64 blob; adding a key that is already
there replaces that line (so its options follow the config) rather than
appending a duplicate, which makes re-runs converge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from bootseed.late import linegrammar
from bootseed.late.target import TargetRoot

_KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "rsa-sha2-")


def is_key_type(word: str) -> bool:
    return word.startswith(_KEY_TYPE_PREFIXES)


@dataclass(frozen=True)
class AuthorizedKey:
    options: str
    keytype: str
    blob: str
    comment: str

    @property
    def identity(self) -> tuple[str, str]:
        return self.keytype, self.blob

    def line(self) -> str:
        parts = [self.options] if self.options else []
        parts += [self.keytype, self.blob]
        if self.comment:
            parts.append(self.comment)
        return " ".join(parts)

    def with_options(self, options: str) -> AuthorizedKey:
        return AuthorizedKey(options, self.keytype, self.blob, self.comment)


def _split_options(line: str) -> tuple[str, str]:
    """Split a leading options field (which may hold quoted spaces) from the rest."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"' and (index == 0 or line[index - 1] != "\\"):
            quoted = not quoted
        elif char in " \t" and not quoted:
            return line[:index], line[index:].lstrip()
    return line, ""


def parse_key_line(line: str) -> AuthorizedKey | None:
    """One authorized_keys / ``.pub`` line, or ``None`` for comments and junk."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    options = ""
    if not is_key_type(text.split(None, 1)[0]):
        options, text = _split_options(text)
    words = text.split(None, 2)
    if len(words) < 2 or not is_key_type(words[0]):
        return None
    return AuthorizedKey(options, words[0], words[1], words[2] if len(words) > 2 else "")


def merge_keys(existing_text: str, new_keys: list[AuthorizedKey]) -> str:
    lines = existing_text.splitlines()
    positions: dict[tuple[str, str], int] = {}
    for index, line in enumerate(lines):
        parsed = parse_key_line(line)
        if parsed is not None:
            positions.setdefault(parsed.identity, index)
    for key in new_keys:
        if key.identity in positions:
            lines[positions[key.identity]] = key.line()
        else:
            positions[key.identity] = len(lines)
            lines.append(key.line())
    return "".join(line + "\n" for line in lines)


def parse_keys(texts: list[str], where: str) -> tuple[list[AuthorizedKey], list[str]]:
    """Parse configured key strings; bad ones become problems naming their position."""
    keys: list[AuthorizedKey] = []
    problems: list[str] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            problems.append(f"{where}[{index}]: expected a string, got {type(text).__name__}")
            continue
        # sshd ends a line at '\n' only; any other line break inside a line is refused
        # rather than letting one configured line turn into several keys somewhere.
        for line in text.split("\n"):
            line = line.removesuffix("\r")
            if linegrammar.has_line_break(line) or "\0" in line:
                problems.append(f"{where}[{index}]: a key line contains a line break or NUL")
                continue
            parsed = parse_key_line(line)
            if parsed is None:
                if line.strip() and not line.strip().startswith("#"):
                    problems.append(f"{where}[{index}]: not an SSH public key: {line[:40]!r}")
                continue
            keys.append(parsed)
    return keys, problems


def write_authorized_keys(
    target: TargetRoot, home: str, uid: int, gid: int, keys: list[AuthorizedKey]
) -> str:
    """Merge ``keys`` into ``home``/.ssh/authorized_keys; returns the target path.

    Resolved inside the target root: a symlinked home or ``.ssh`` cannot send the
    keys (or the read of the existing file) outside it.
    """
    for key in keys:
        check_key_line(key)
    ssh_dir_inside = PurePosixPath(home) / ".ssh"
    with target.open_dir(home, create=True):
        pass
    if not target.exists(ssh_dir_inside):
        with target.open_dir(ssh_dir_inside, create=True, mode=0o700, owner=(uid, gid)):
            pass
    path_inside = ssh_dir_inside / "authorized_keys"
    existing = target.read_text(path_inside, default="")
    merged = merge_keys(existing, keys)
    if merged != existing or not target.exists(path_inside):
        target.write(path_inside, merged, mode=0o600, owner=(uid, gid))
    else:
        target.chown(path_inside, uid, gid)
    return str(path_inside)


def check_key_line(key: AuthorizedKey) -> AuthorizedKey:
    """An authorized_keys line must stay one line: options and comment are free text."""
    linegrammar.authorized_key_part(key.options, "key options")
    linegrammar.authorized_key_part(key.comment, "key comment")
    linegrammar.authorized_key_part(key.blob, "key data")
    return key
