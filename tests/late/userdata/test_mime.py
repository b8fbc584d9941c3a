from __future__ import annotations

from typing import Any

import pytest
from bootseed.late.userdata import mime
from bootseed.late.userdata.engine import process

from .helpers import P, multipart, nested

SCRIPT = b"#!/bin/sh\necho one\n"
CONFIG = b"#cloud-config\nruncmd: [one]\n"


def _walk(data: bytes) -> tuple[list[mime.MimeLeaf], list[tuple[str, str]], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    notes: list[tuple[str, str]] = []
    leaves = list(
        mime.walk(
            data,
            "ud",
            max_depth=5,
            problem=lambda w, m: problems.append((w, m)),
            note=lambda w, m: notes.append((w, m)),
        )
    )
    return leaves, problems, notes


def test_parts_come_out_in_order_with_types_filenames_and_sources() -> None:
    raw = multipart(
        P(CONFIG, "text/cloud-config", "a.yaml"),
        P(SCRIPT, "text/x-shellscript", "b.sh"),
        P(b"#cloud-boothook\n#!/bin/sh\necho early\n", "text/cloud-boothook", "c"),
    )
    result = process(raw)
    assert result.problems == []
    assert [(p.index, p.content_type, p.filename, p.source) for p in result.parts] == [
        (1, "text/cloud-config", "a.yaml", "user-data part 1 (a.yaml)"),
        (2, "text/x-shellscript", "b.sh", "user-data part 2 (b.sh)"),
        (3, "text/cloud-boothook", "c", "user-data part 3 (c)"),
    ]
    assert result.parts[1].payload == SCRIPT
    assert result.cloud_config == {"runcmd": ["one"]}


@pytest.mark.parametrize(
    "boundary", ["simple", "==_Part_0_12345.67890==", "a'b(c)+_,-./:=? x", "-" * 60]
)
def test_any_legal_boundary(boundary: str) -> None:
    raw = multipart(P(SCRIPT, "text/x-shellscript", "s"), P(CONFIG), boundary=boundary)
    result = process(raw)
    assert result.problems == []
    assert [p.content_type for p in result.parts] == ["text/x-shellscript", "text/cloud-config"]
    assert result.parts[0].payload == SCRIPT


def test_crlf_line_endings() -> None:
    raw = multipart(P(b"#!/bin/sh\r\necho x", "text/x-shellscript", "s"), crlf=True)
    result = process(raw)
    assert result.problems == []
    assert result.parts[0].payload == b"#!/bin/sh\r\necho x"


def test_nested_multipart_keeps_document_order() -> None:
    inner = nested([P(b"#!/bin/sh\necho inner\n", "text/x-shellscript", "in.sh"), P(CONFIG)], "IN")
    raw = multipart(P(b"#!/bin/sh\necho first\n", filename="first.sh"), inner, P(b"#!/bin/sh\n"))
    result = process(raw)
    assert result.problems == []
    assert [p.source for p in result.parts] == [
        "user-data part 1 (first.sh)",
        "user-data part 2 part 1 (in.sh)",
        "user-data part 2 part 2",
        "user-data part 3",
    ]


def test_nesting_beyond_the_limit_is_a_problem_not_a_crash() -> None:
    body = multipart(P(SCRIPT, filename="deep.sh"), boundary="b0")
    for level in range(1, 15):
        head, _, rest = body.partition(b"\n\n")
        entity = head.split(b"\n")[0] + b"\n\n" + rest
        body = multipart(entity, P(CONFIG), boundary=f"b{level}")
    result = process(body)
    assert any("nesting deeper than 10" in p.message for p in result.problems)
    # The shallow cloud-config parts still come through.
    assert result.cloud_config == {"runcmd": ["one"]}


def test_base64_and_quoted_printable_parts() -> None:
    script = b"#!/bin/sh\necho caf\xc3\xa9 = ok\n"
    raw = multipart(
        P(script, "text/x-shellscript", "b64.sh", encoding="base64"),
        P(
            b"#cloud-config\nmotd: 'x=y caf\xc3\xa9'\n",
            "text/cloud-config",
            encoding="quoted-printable",
        ),
    )
    result = process(raw)
    assert result.problems == []
    assert result.parts[0].payload == script
    assert result.cloud_config == {"motd": "x=y café"}


def test_unpadded_base64_is_accepted() -> None:
    import base64

    encoded = base64.b64encode(b"#!/bin/sh\necho 1").rstrip(b"=")
    raw = multipart(
        P(encoded, "text/x-shellscript", headers={"Content-Transfer-Encoding": "base64"})
    )
    result = process(raw)
    assert result.problems == []
    assert result.parts[0].payload == b"#!/bin/sh\necho 1"


def test_bad_base64_is_reported_and_other_parts_survive() -> None:
    raw = multipart(
        P(
            b"!!!not*base64",
            "text/x-shellscript",
            "bad.sh",
            {"Content-Transfer-Encoding": "base64"},
        ),
        P(CONFIG, "text/cloud-config", "good.yaml"),
    )
    result = process(raw)
    assert [(p.where, "base64" in p.message) for p in result.problems] == [
        ("user-data part 1 (bad.sh)", True)
    ]
    assert [p.filename for p in result.parts] == ["good.yaml"]
    assert result.cloud_config == {"runcmd": ["one"]}


def test_unknown_transfer_encoding_is_reported() -> None:
    raw = multipart(P(SCRIPT, headers={"Content-Transfer-Encoding": "x-uuencode"}), P(CONFIG))
    result = process(raw)
    assert len(result.problems) == 1
    assert "x-uuencode" in result.problems[0].message
    assert result.cloud_config == {"runcmd": ["one"]}


def test_declared_charset_is_converted_to_utf8() -> None:
    body = "#cloud-config\nmotd: 'Grüße'\n".encode("latin-1")
    raw = multipart(P(body, 'text/cloud-config; charset="iso-8859-1"'))
    result = process(raw)
    assert result.problems == []
    assert result.cloud_config == {"motd": "Grüße"}


def test_unknown_charset_is_reported() -> None:
    raw = multipart(P(CONFIG, 'text/cloud-config; charset="x-klingon"'), P(SCRIPT))
    result = process(raw)
    assert ["x-klingon" in p.message for p in result.problems] == [True]
    assert [p.content_type for p in result.parts] == ["text/x-shellscript"]


def test_missing_boundary_parameter_is_reported() -> None:
    raw = b"Content-Type: multipart/mixed\nMIME-Version: 1.0\n\n--x\n\n#!/bin/sh\n--x--\n"
    result = process(raw)
    assert result.parts == []
    assert ["no boundary" in p.message for p in result.problems] == [True]


def test_boundary_that_never_appears_is_reported() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="zz"\nMIME-Version: 1.0\n\n#!/bin/sh\n'
    result = process(raw)
    assert result.parts == []
    assert ["never appears" in p.message for p in result.problems] == [True]


def test_missing_close_delimiter_keeps_the_last_part_with_a_note() -> None:
    raw = multipart(P(SCRIPT, filename="a"), P(CONFIG, filename="b")).rsplit(
        b"--==BOUNDARY==--", 1
    )[0]
    result = process(raw)
    assert result.problems == []
    assert [p.filename for p in result.parts] == ["a", "b"]
    assert any("closing boundary" in n.message for n in result.notes)


def test_preamble_and_epilogue_are_ignored() -> None:
    raw = multipart(P(SCRIPT)) + b"epilogue text that is not a part\n"
    leaves, problems, _ = _walk(raw)
    assert problems == []
    assert [leaf.body for leaf in leaves] == [SCRIPT]


def test_boundary_prefix_of_a_longer_line_is_not_a_delimiter() -> None:
    body = b"#!/bin/sh\necho --==BOUNDARY==-and-more\n--==BOUNDARY==x\n"
    leaves, problems, _ = _walk(multipart(P(body)))
    assert problems == []
    assert leaves[0].body == body


def test_single_part_mime_message() -> None:
    raw = b"Content-Type: text/x-shellscript\nMIME-Version: 1.0\n\n#!/bin/sh\necho single\n"
    result = process(raw)
    assert result.problems == []
    assert [(p.content_type, p.source) for p in result.parts] == [
        ("text/x-shellscript", "user-data")
    ]
    assert result.parts[0].payload == b"#!/bin/sh\necho single\n"


def test_rfc2231_filename_and_dangerous_names_are_made_safe() -> None:
    raw = multipart(
        P(
            SCRIPT,
            "text/x-shellscript",
            headers={"Content-Disposition": "attachment; filename*=utf-8''na%C3%AFve.sh"},
        ),
        P(SCRIPT, "text/x-shellscript", filename="../../etc/cron.d/evil"),
        P(SCRIPT, "text/x-shellscript", filename=".."),
    )
    result = process(raw)
    assert [p.filename for p in result.parts] == ["naïve.sh", ".._.._etc_cron.d_evil", "part-003"]


def test_script_that_mentions_mime_version_is_not_parsed_as_mail() -> None:
    raw = b"#!/bin/sh\ncat <<EOF\nMIME-Version: 1.0\nEOF\n"
    result = process(raw)
    assert [p.content_type for p in result.parts] == ["text/x-shellscript"]
    assert result.parts[0].payload == raw


def test_part_without_header_separator_is_still_read() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'
        b"--b\n#!/bin/sh\necho hi\n--b--\n"
    )
    result = process(raw)
    assert result.problems == []
    assert result.parts[0].payload == b"#!/bin/sh\necho hi"


def test_shellscript_per_x_types_are_kept() -> None:
    raw = multipart(
        P(SCRIPT, "text/x-shellscript-per-boot", "boot.sh"),
        P(SCRIPT, "text/x-shellscript-per-instance", "inst.sh"),
        P(SCRIPT, "text/x-shellscript-per-once", "once.sh"),
    )
    result = process(raw)
    assert [p.content_type for p in result.parts] == [
        "text/x-shellscript-per-boot",
        "text/x-shellscript-per-instance",
        "text/x-shellscript-per-once",
    ]


def test_declared_shellscript_holding_cloud_config_is_redetected() -> None:
    # cloud-init re-checks text/x-shellscript, since every script must start with #!.
    result = process(multipart(P(CONFIG, "text/x-shellscript")))
    assert [p.content_type for p in result.parts] == ["text/cloud-config"]


def test_declared_type_wins_over_first_line_for_specific_types() -> None:
    result = process(multipart(P(b"runcmd: [x]\n", "text/cloud-config")))
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["x"]}


def _summary(result: Any) -> list[tuple[str, int]]:
    return [(p.content_type, p.size) for p in result.parts]


def test_part_handler_is_recorded_as_a_part() -> None:
    handler = b"#part-handler\ndef list_types():\n    return []\n"
    result = process(multipart(P(handler)))
    assert _summary(result) == [("text/part-handler", len(handler))]


def test_huge_header_block_is_refused_quickly() -> None:
    raw = multipart(P(b"#!/bin/sh\n", filename="ok.sh"), P(b"x: y\n" * 20000, filename="junk"))
    result = process(b"MIME-Version: 1.0\n" + b"a: b\n" * 200_000)
    assert ["header block is larger" in p.message for p in result.problems] == [True]
    # A part whose "headers" never end is reported; its neighbours survive.
    junk = raw.replace(b'filename="junk"\n\n', b'filename="junk"\n')
    result = process(junk)
    assert [p.filename for p in result.parts] == ["ok.sh"]
    assert [p.where for p in result.problems] == ["user-data part 2"]
