from __future__ import annotations

import pytest
from bootseed.late.userdata.engine import process
from bootseed.late.userdata.jsonpatch import PatchError, apply_patch

from .helpers import P, multipart


def test_jsonp_part_patches_the_merged_config_in_order() -> None:
    raw = multipart(
        P(b"#cloud-config\nruncmd: [a]\npackages: [vim]\n", filename="base"),
        P(
            b'#cloud-config-jsonp\n[\n {"op": "add", "path": "/runcmd/-", "value": "b"},\n'
            b' {"op": "remove", "path": "/packages"},\n'
            b' {"op": "add", "path": "/users", "value": [{"name": "x"}]}\n]\n',
            filename="patch",
        ),
        P(b"#cloud-config\nhostname: h\n", filename="after"),
    )
    result = process(raw)
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["a", "b"], "users": [{"name": "x"}], "hostname": "h"}
    assert [p.content_type for p in result.parts] == [
        "text/cloud-config",
        "text/cloud-config-jsonp",
        "text/cloud-config",
    ]
    assert result.key_origins[("runcmd", 0)] == "user-data part 1 (base) line 2"
    assert result.key_origins[("runcmd", 1)] == "user-data part 2 (patch)"
    assert result.key_origins[("users", 0, "name")] == "user-data part 2 (patch)"
    assert result.key_origins[("hostname",)] == "user-data part 3 (after) line 2"


def test_failing_patch_is_all_or_nothing_and_reported() -> None:
    raw = multipart(
        P(b"#cloud-config\nruncmd: [a]\n"),
        P(
            b'#cloud-config-jsonp\n[{"op": "add", "path": "/x", "value": 1},'
            b' {"op": "remove", "path": "/missing"}]'
        ),
    )
    result = process(raw)
    assert result.cloud_config == {"runcmd": ["a"]}
    assert len(result.problems) == 1
    assert "operation 2" in result.problems[0].message


def test_invalid_json_names_the_line() -> None:
    result = process(b'#cloud-config-jsonp\n[\n  {"op": "add",,}\n]\n')
    assert [p.where for p in result.problems] == ["user-data line 3 column 16"]


def test_patch_ops_unit() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x", "k~/": 1}
    patch = [
        {"op": "test", "path": "/c", "value": "x"},
        {"op": "replace", "path": "/c", "value": "y"},
        {"op": "copy", "from": "/a/b", "path": "/d"},
        {"op": "move", "from": "/a/b/0", "path": "/a/b/-"},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/k~0~1"},
    ]
    out, _ = apply_patch(doc, patch)
    assert out == {"a": {"b": [0, 2, 1]}, "c": "y", "d": [1, 2]}
    assert doc == {"a": {"b": [1, 2]}, "c": "x", "k~/": 1}


@pytest.mark.parametrize(
    "patch",
    [
        {"op": "add"},
        [{"op": "frobnicate", "path": "/a"}],
        [{"op": "add", "path": "a", "value": 1}],
        [{"op": "add", "path": "/a/b/9", "value": 1}],
        [{"op": "add", "path": "/a/b/01", "value": 1}],
        [{"op": "test", "path": "/a", "value": 5}],
        [{"op": "move", "from": "/a", "path": "/a/c"}],
        [{"op": "remove", "path": ""}],
        [{"op": "replace", "path": "/nope", "value": 1}],
    ],
)
def test_patch_errors(patch: object) -> None:
    with pytest.raises(PatchError):
        apply_patch({"a": {"b": []}}, patch)
