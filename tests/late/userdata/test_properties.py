"""Property tests: MIME built by the standard library parses back exactly; junk never raises."""

from __future__ import annotations

import gzip
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from bootseed.late.userdata.engine import process
from bootseed.late.userdata.types import Limits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import P, multipart

_BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.text(_BCHARS, min_size=1, max_size=69).filter(lambda b: not b.endswith(" "))
filenames = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")).filter(
        lambda c: c not in '/\\"'
    ),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() not in ("", ".", "..") and s == s.strip())

# A leaf: (kind, body bytes, filename or None, gzip it?)
leaves = st.tuples(
    st.sampled_from(["script", "script-per-boot", "config"]),
    st.binary(max_size=300),
    st.none() | filenames,
    st.booleans(),
)


def _leaf(kind: str, body: bytes, name: str | None, zipped: bool) -> tuple[MIMEBase, str, bytes]:
    if kind == "config":
        payload = b"#cloud-config\n# " + body.hex().encode() + b"\n"
        content_type = "text/cloud-config"
    else:
        payload = b"#!/bin/sh\n" + body
        content_type = "text/x-shellscript" if kind == "script" else "text/x-shellscript-per-boot"
    if zipped:
        part: MIMEBase = MIMEApplication(gzip.compress(payload), "x-gzip")
        expected_type = "text/x-shellscript" if kind != "config" else content_type
    elif kind == "config":
        part = MIMEText(payload.decode("ascii"), "cloud-config")
        expected_type = content_type
    else:
        _, subtype = content_type.split("/")
        part = MIMEApplication(payload, subtype)
        part.replace_header("Content-Type", content_type)
        expected_type = content_type
    if name is not None:
        part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
    return part, expected_type, payload


tree = st.recursive(
    st.lists(leaves, min_size=1, max_size=4).map(lambda xs: ("leaves", xs)),
    lambda children: st.lists(children, min_size=1, max_size=3).map(lambda xs: ("nest", xs)),
    max_leaves=6,
)


def _build(node: tuple, boundary: str, expected: list[tuple[str, bytes, str | None]]) -> MIMEBase:
    message = MIMEMultipart(boundary=boundary)
    kind, items = node
    for number, item in enumerate(items):
        if kind == "leaves":
            part, content_type, payload = _leaf(*item)
            expected.append((content_type, payload, item[2]))
            message.attach(part)
        else:
            message.attach(_build(item, f"{boundary}.{number}", expected))
    return message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree, boundaries)
def test_mime_built_by_the_stdlib_round_trips(node: tuple, boundary: str) -> None:
    expected: list[tuple[str, bytes, str | None]] = []
    raw = _build(node, boundary, expected).as_bytes()
    result = process(raw)
    assert result.problems == []
    assert [(p.content_type, p.payload) for p in result.parts] == [
        (content_type, payload) for content_type, payload, _ in expected
    ]
    for part, (_, _, name) in zip(result.parts, expected, strict=True):
        if name is not None:
            assert part.filename == name


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    result = process(raw, limits=Limits(max_includes=0))
    assert all("internal error" not in p.message for p in result.problems)


_SEED = multipart(
    P(b"#cloud-config\nruncmd: [a]\nusers: [{name: x}]\n", "text/cloud-config", "a.yaml"),
    P(gzip.compress(b"#!/bin/sh\necho z\n"), "application/x-gzip", "z", encoding="base64"),
    P(b"#cloud-config-archive\n- content: '#!/bin/sh'\n", filename="arch"),
    P(b'#cloud-config-jsonp\n[{"op": "add", "path": "/b", "value": 1}]\n'),
    P(b"## template: jinja\n#cloud-config\nh: {{ v1.x }}\n"),
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_user_data_never_raises(data: st.DataObject) -> None:
    raw = bytearray(_SEED)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "delete", "flip"]))
        if action == "insert":
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del raw[position : position + data.draw(st.integers(1, 16))]
        elif position < len(raw):
            raw[position] ^= data.draw(st.integers(1, 255))
    result = process(bytes(raw), limits=Limits(max_includes=0))
    assert all("internal error" not in p.message for p in result.problems)
