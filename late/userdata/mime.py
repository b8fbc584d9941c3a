"""A small MIME reader for user-data: nested multiparts, any boundary, bounded depth.

The standard ``email`` parser is line-based and copies the body several times;
user-data can be 16 MiB, so bodies are cut out with ``bytes.find`` on the
boundary and only the header blocks go through ``email``'s header parser.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bootseed.late.userdata.detect import detect

if TYPE_CHECKING:
    from email.message import Message

Report = Callable[[str, str], None]

_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_MIME_HINT = re.compile(rb"(?:^|\n)mime-version[ \t]*:", re.IGNORECASE)
_HEAD_SCAN = 4096
# Real header blocks are a few hundred bytes; a huge one is junk, and the
# email header parser is slow on it.
MAX_HEADER_BYTES = 64 * 1024


class MimeError(ValueError):
    pass


@dataclass
class MimeLeaf:
    """A non-multipart entity: its headers and its still transfer-encoded body."""

    headers: Message
    body: bytes
    where: str


def looks_like_mime(data: bytes) -> bool:
    """A ``MIME-Version`` header near the start, and no user-data first-line marker.

    cloud-init looks for "mime-version:" anywhere in the first 4 KiB; requiring
    it at a line start and not in a ``#!``/``#cloud-config`` part keeps a script
    that merely mentions the header from being parsed as mail.
    """
    if detect(data) is not None:
        return False
    return _MIME_HINT.search(data[:_HEAD_SCAN]) is not None


def split_entity(data: bytes) -> tuple[Message, bytes, bool]:
    """Headers, body and whether the blank line between them was missing.

    Raises ``MimeError`` when the header block is larger than ``MAX_HEADER_BYTES``.
    """
    pos = 0
    size = len(data)
    body_start = size
    missing_separator = False
    while pos < size:
        newline = data.find(b"\n", pos)
        end = size if newline < 0 else newline + 1
        line = data[pos:end]
        if line in (b"\n", b"\r\n"):
            body_start = end
            break
        if end > MAX_HEADER_BYTES:
            raise MimeError(f"header block is larger than {MAX_HEADER_BYTES} bytes")
        if pos > 0 and line[:1] in (b" ", b"\t"):
            pos = end
            continue
        if _HEADER_LINE.match(line):
            pos = end
            continue
        body_start = pos
        missing_separator = pos > 0
        break
    # Imported here: plain #cloud-config user-data (the common case) never needs email.
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    head = data[: min(pos, body_start)]
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    return headers, data[body_start:], missing_separator


def entity_label(where: str, headers: Message) -> str:
    name = headers.get_filename()
    if name:
        return f"{where} ({printable(name)})"
    return where


def printable(text: str, limit: int = 120) -> str:
    clean = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    clean = "".join(ch if ch.isprintable() else "?" for ch in clean)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def walk(
    data: bytes,
    where: str,
    *,
    max_depth: int,
    problem: Report,
    note: Report,
) -> Iterator[MimeLeaf]:
    """Yield the leaves of the MIME message ``data`` in document order."""
    try:
        headers, body, missing = split_entity(data)
    except MimeError as exc:
        problem(where, f"{exc}; ignored")
        return
    if missing:
        note(where, "no blank line after the headers; the first non-header line starts the body")
    yield from _walk_entity(headers, body, where, 0, max_depth, problem, note)


def _walk_entity(
    headers: Message,
    body: bytes,
    where: str,
    depth: int,
    max_depth: int,
    problem: Report,
    note: Report,
) -> Iterator[MimeLeaf]:
    if headers.get_content_maintype() != "multipart":
        yield MimeLeaf(headers, body, where)
        return
    if depth >= max_depth:
        problem(where, f"multipart nesting deeper than {max_depth} levels; its parts are ignored")
        return
    boundary = headers.get_boundary()
    if not boundary:
        problem(where, "multipart entity has no boundary parameter; its content is ignored")
        return
    state = _SplitState()
    count = 0
    token = boundary.encode("utf-8", "surrogateescape")
    for count, chunk in enumerate(_split(body, token, state), 1):
        try:
            child_headers, child_body, missing = split_entity(chunk)
        except MimeError as exc:
            problem(f"{where} part {count}", f"{exc}; part ignored")
            continue
        child_where = entity_label(f"{where} part {count}", child_headers)
        if missing:
            note(
                child_where,
                "no blank line after the headers; the first non-header line starts the body",
            )
        yield from _walk_entity(
            child_headers, child_body, child_where, depth + 1, max_depth, problem, note
        )
    if count == 0:
        problem(where, f"multipart boundary {boundary!r} never appears; no parts found")
    elif not state.closed:
        note(where, f"closing boundary --{boundary}-- is missing; the last part runs to the end")


class _SplitState:
    closed = False


def _split(body: bytes, boundary: bytes, state: _SplitState) -> Iterator[bytes]:
    """Yield the content between delimiter lines ``--boundary`` (RFC 2046 5.1.1)."""
    delimiter = b"--" + boundary
    pos = 0
    start: int | None = None
    size = len(body)
    while True:
        hit = body.find(delimiter, pos)
        if hit < 0:
            break
        if hit > 0 and body[hit - 1] != 0x0A:
            pos = hit + 1
            continue
        newline = body.find(b"\n", hit)
        line_end = size if newline < 0 else newline + 1
        rest = body[hit + len(delimiter) : line_end].rstrip(b" \t\r\n")
        if rest not in (b"", b"--"):
            # A longer token that merely starts with the boundary.
            pos = hit + 1
            continue
        if start is not None:
            end = hit
            if end > start and body[end - 1] == 0x0A:
                end -= 1
                if end > start and body[end - 1] == 0x0D:
                    end -= 1
            yield body[start:end]
        if rest == b"--":
            state.closed = True
            return
        start = line_end
        pos = line_end
    if start is not None:
        yield body[start:]


def decode_body(headers: Message, body: bytes) -> bytes:
    """Undo Content-Transfer-Encoding and convert a declared text charset to UTF-8."""
    encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        data = _b64decode(body)
    elif encoding == "quoted-printable":
        data = binascii.a2b_qp(body)
    elif encoding in ("", "7bit", "8bit", "binary"):
        data = body
    else:
        raise MimeError(f"unsupported Content-Transfer-Encoding {encoding!r}")
    if headers.get_content_maintype() == "text":
        charset = headers.get_content_charset()
        if charset and charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
            try:
                text = data.decode(charset)
            except LookupError:
                raise MimeError(f"unknown charset {printable(charset)!r}") from None
            except UnicodeDecodeError as exc:
                raise MimeError(
                    f"content is not valid {printable(charset)}: {exc.reason}"
                ) from None
            except (UnicodeError, ValueError, TypeError) as exc:
                # Codecs that cannot decode at all ("undefined"), odd names (a NUL).
                raise MimeError(f"charset {printable(charset)!r} unusable: {exc}") from None
            if not isinstance(text, str):
                raise MimeError(f"charset {printable(charset)!r} is not a text encoding")
            data = text.encode("utf-8", "surrogateescape")
    return data


def _b64decode(body: bytes) -> bytes:
    compact = body.translate(None, b" \t\r\n")
    # Unpadded base64 is common from hand-made tools; padding is unambiguous.
    missing = -len(compact) % 4
    if missing in (1, 2):
        compact += b"=" * missing
    try:
        return binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error as exc:
        raise MimeError(f"invalid base64 content: {exc}") from None
