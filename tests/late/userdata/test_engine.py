from __future__ import annotations

import pytest
from bootseed.late.userdata.engine import overlay_results, process
from bootseed.late.userdata.types import Limits

from .helpers import P, multipart


def test_empty_input_is_not_a_problem() -> None:
    for raw in (b"", b"  \n\n"):
        result = process(raw)
        assert (result.parts, result.cloud_config, result.problems) == ([], {}, [])


def test_empty_parts_are_noted_not_failed() -> None:
    result = process(
        multipart(P(b"", "text/x-shellscript", "e.sh"), P(b"#cloud-config\n", filename="c"))
    )
    assert result.problems == []
    assert [n.where for n in result.notes] == ["user-data part 1 (e.sh)"]
    # An empty cloud-config document is a part that merges nothing.
    assert [p.filename for p in result.parts] == ["c"]
    assert result.cloud_config == {}


def test_unknown_content_is_noted_with_its_first_line() -> None:
    result = process(b"just some words\nmore\n")
    assert (result.parts, result.problems) == ([], [])
    assert result.notes[0].where == "user-data"
    assert "'just some words'" in result.notes[0].message
    mixed = process(multipart(P(b'{"app": "data"}', "application/json"), P(b"#!/bin/sh\n")))
    assert mixed.problems == []
    assert [n.where for n in mixed.notes] == ["user-data part 1"]
    assert [p.content_type for p in mixed.parts] == ["text/x-shellscript"]


def test_broken_yaml_reports_line_and_other_parts_survive() -> None:
    raw = multipart(
        P(b"#cloud-config\nruncmd:\n  - ok\n", filename="good1.yaml"),
        P(b"#cloud-config\nusers:\n  - name: a\n   bad-indent: b\n", filename="broken.yaml"),
        P(b"#!/bin/sh\necho still here\n", filename="s.sh"),
        P(b"#cloud-config\n- a list\n", filename="list.yaml"),
        P(b"#cloud-config\nhostname: h\n", filename="good2.yaml"),
    )
    result = process(raw)
    assert [p.where for p in result.problems] == [
        "user-data part 2 (broken.yaml) line 4 column 4",
        "user-data part 4 (list.yaml)",
    ]
    assert "mapping" in result.problems[1].message
    assert [p.filename for p in result.parts] == ["good1.yaml", "s.sh", "good2.yaml"]
    assert result.cloud_config == {"runcmd": ["ok"], "hostname": "h"}


def test_non_utf8_cloud_config_names_the_line() -> None:
    raw = multipart(
        P(b"#cloud-config\na: 1\nb: caf\xe9\n", filename="latin.yaml"), P(b"#!/bin/sh\n")
    )
    result = process(raw)
    assert [p.where for p in result.problems] == ["user-data part 1 (latin.yaml) line 3"]
    assert "0xe9" in result.problems[0].message
    assert [p.content_type for p in result.parts] == ["text/x-shellscript"]


def test_non_utf8_script_passes_through_byte_for_byte() -> None:
    script = b"#!/bin/sh\necho caf\xe9\n"
    result = process(script)
    assert result.problems == []
    assert result.parts[0].payload == script


def test_yaml_alias_bomb_is_refused() -> None:
    lines = ["#cloud-config", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    raw = multipart(
        P("\n".join(lines).encode(), filename="bomb.yaml"), P(b"#cloud-config\nok: 1\n")
    )
    result = process(raw)
    assert [p.where for p in result.problems] == ["user-data part 1 (bomb.yaml)"]
    assert "expands" in result.problems[0].message
    assert result.cloud_config == {"ok": 1}


def test_deeply_nested_yaml_is_refused_without_crashing() -> None:
    deep = b"#cloud-config\na: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    result = process(deep)
    assert result.cloud_config == {}
    # Our own depth check, or libyaml's (PyYAML >= 6.0.3 stops there first): one problem
    # about the nesting either way, with the line.
    assert len(result.problems) == 1, result.problems
    message = result.problems[0].message
    assert "nesting" in message and "line 2" in message, message


def test_part_count_limit() -> None:
    raw = multipart(*(P(b"#!/bin/sh\n", filename=f"s{i}") for i in range(10)))
    result = process(raw, limits=Limits(max_parts=4))
    assert len(result.parts) == 4
    assert [p.where for p in result.problems] == ["user-data part 5 (s4)"]


def test_bom_is_dropped_before_detection() -> None:
    result = process(b"\xef\xbb\xbf#cloud-config\na: 1\n")
    assert result.cloud_config == {"a": 1}


def test_key_origins_follow_merging() -> None:
    raw = multipart(
        P(b"#cloud-config\nusers:\n  - name: first\nruncmd:\n  - one\n", filename="a.yaml"),
        P(
            b"#cloud-config\nmerge_how: 'dict(recurse_array)+list(append)'\n\n"
            b"runcmd:\n  - two\nusers:\n  - name: ignored\n",
            filename="b.yaml",
        ),
    )
    result = process(raw)
    assert result.problems == []
    assert result.cloud_config == {
        "users": [{"name": "first"}, {"name": "ignored"}],
        "runcmd": ["one", "two"],
    }
    origins = result.key_origins
    assert origins[("users", 0, "name")] == "user-data part 1 (a.yaml) line 3"
    assert origins[("users", 1, "name")] == "user-data part 2 (b.yaml) line 7"
    assert origins[("runcmd", 0)] == "user-data part 1 (a.yaml) line 5"
    assert origins[("runcmd", 1)] == "user-data part 2 (b.yaml) line 5"
    assert ("merge_how",) not in origins


def test_overlay_results_user_wins_over_vendor() -> None:
    vendor = process(b"#cloud-config\nhostname: vendor\npackages: [v]\n", origin="vendor-data")
    user = process(b"#cloud-config\nhostname: user\n", origin="user-data")
    both = overlay_results(vendor, user)
    assert both.cloud_config == {"hostname": "user", "packages": ["v"]}
    assert both.key_origins[("hostname",)] == "user-data line 2"
    assert both.key_origins[("packages", 0)] == "vendor-data line 3"
    assert [p.source for p in both.parts] == ["vendor-data", "user-data"]


def test_vendor_data_origin_names_locations() -> None:
    result = process(b"#cloud-config\na: [\n", origin="vendor-data")
    assert result.problems[0].where.startswith("vendor-data line ")


def test_to_json_is_json_serialisable_for_odd_yaml_types() -> None:
    import json

    raw = (
        b"#cloud-config\nwhen: 2024-01-02\nblob: !!binary aGk=\n"
        b"2024-01-01: dated-key\nset: !!set {a, b}\n1: int-key\n"
    )
    doc = process(raw).to_json()
    text = json.dumps(doc)
    assert json.loads(text)["cloud_config"] == {
        "when": "2024-01-02",
        "blob": "aGk=",
        "2024-01-01": "dated-key",
        "set": ["a", "b"],
        "1": "int-key",
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\x02",
        b"Content-Type: multipart/mixed; boundary=x\nMIME-Version: 1.0\n\n--x\n",
        b"#cloud-config\n" + b"\xff" * 10,
        b"#include\n",
        b"#cloud-config-jsonp\n{}",
        b"#cloud-config\n!!python/object:os.system {}\n",
    ],
)
def test_odd_inputs_never_raise_and_never_report_internal_errors(raw: bytes) -> None:
    result = process(raw)
    assert all("internal error" not in p.message for p in result.problems)
