"""Builders for hand-written user-data used across the engine tests."""

from __future__ import annotations

import base64
import gzip
from dataclasses import dataclass, field


@dataclass
class P:
    """One MIME part to build: body bytes plus the headers it should carry."""

    body: bytes
    content_type: str = "text/plain"
    filename: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None  # "base64" / "quoted-printable"; body is encoded for you


def multipart(*parts: P | bytes, boundary: str = "==BOUNDARY==", crlf: bool = False) -> bytes:
    """A multipart/mixed message; a ``bytes`` item is a pre-built nested entity."""
    nl = b"\r\n" if crlf else b"\n"
    out = [
        f'Content-Type: multipart/mixed; boundary="{boundary}"'.encode(),
        b"MIME-Version: 1.0",
        b"",
        b"This is a multi-part message in MIME format.",
    ]
    for part in parts:
        out.append(f"--{boundary}".encode())
        if isinstance(part, bytes):
            out.append(part)
            continue
        out.append(f"Content-Type: {part.content_type}".encode())
        out.append(b"MIME-Version: 1.0")
        if part.filename is not None:
            out.append(f'Content-Disposition: attachment; filename="{part.filename}"'.encode())
        for key, value in part.headers.items():
            out.append(f"{key}: {value}".encode())
        body = part.body
        if part.encoding == "base64":
            out.append(b"Content-Transfer-Encoding: base64")
            body = base64.encodebytes(body).rstrip(b"\n")
        elif part.encoding == "quoted-printable":
            import quopri

            out.append(b"Content-Transfer-Encoding: quoted-printable")
            body = quopri.encodestring(body)
        out.append(b"")
        out.append(body)
    out.append(f"--{boundary}--".encode())
    out.append(b"")
    return nl.join(out)


def nested(inner_parts: list[P], boundary: str) -> bytes:
    """A nested multipart entity (headers + body) to put inside ``multipart``."""
    body = multipart(*inner_parts, boundary=boundary)
    _, _, rest = body.partition(b"\n\n")
    return f'Content-Type: multipart/alternative; boundary="{boundary}"\n'.encode() + b"\n" + rest


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
