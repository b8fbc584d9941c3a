from __future__ import annotations

import pytest
from bootseed.late.userdata.engine import process
from bootseed.late.userdata.merge import (
    DEFAULT_HOW,
    Mergers,
    MergeSpecError,
    merge_config,
    merge_traced,
    parse_how,
)

from .helpers import P, multipart


def _two(first: str, second: str, **headers: str) -> bytes:
    return multipart(
        P(("#cloud-config\n" + first).encode(), "text/cloud-config", "one"),
        P(("#cloud-config\n" + second).encode(), "text/cloud-config", "two", dict(headers)),
    )


def test_default_is_dict_replace_lists_and_nested_dicts_are_replaced_whole() -> None:
    result = process(
        _two(
            "runcmd: [a, b]\nntp: {enabled: true, servers: [s1]}\nkeep: 1\n",
            "runcmd: [c]\nntp: {servers: [s2]}\nnew: 2\n",
        )
    )
    assert result.problems == []
    assert result.cloud_config == {
        "runcmd": ["c"],
        "ntp": {"servers": ["s2"]},
        "keep": 1,
        "new": 2,
    }


def test_merge_how_string_in_the_later_part() -> None:
    result = process(
        _two(
            "runcmd: [a]\nntp: {enabled: true, servers: [s1]}\n",
            "merge_how: 'list(append)+dict(recurse_array)+str()'\n"
            "runcmd: [b]\nntp: {servers: [s2]}\n",
        )
    )
    assert result.problems == []
    # dict(no_replace) recurses into mappings and, with recurse_array, appends lists.
    assert result.cloud_config == {
        "runcmd": ["a", "b"],
        "ntp": {"enabled": True, "servers": ["s1", "s2"]},
    }
    assert "merge_how" not in result.cloud_config


def test_merge_how_list_form() -> None:
    result = process(
        _two(
            "packages: [a]\n",
            "merge_how:\n - name: list\n   settings: [prepend]\n"
            " - name: dict\n   settings: [no_replace, recurse_list]\npackages: [b]\n",
        )
    )
    assert result.cloud_config == {"packages": ["b", "a"]}


def test_merge_type_header() -> None:
    result = process(
        _two(
            "packages: [a]\n",
            "packages: [b]\n",
            **{"Merge-Type": "list(append)+dict(recurse_array)+str()"},
        )
    )
    assert result.problems == []
    assert result.cloud_config == {"packages": ["a", "b"]}


def test_no_replace_keeps_existing_values() -> None:
    result = process(
        _two(
            "hostname: first\nlist: [1]\n",
            "merge_how: dict(no_replace)\nhostname: second\nlist: [2]\nother: x\n",
        )
    )
    assert result.cloud_config == {"hostname": "first", "list": [1], "other": "x"}


def test_str_append() -> None:
    result = process(_two("motd: 'a'\n", "merge_how: dict(recurse_str)+str(append)\nmotd: 'b'\n"))
    assert result.cloud_config == {"motd": "ab"}


def test_allow_delete() -> None:
    result = process(_two("a: 1\nb: 2\n", "merge_how: dict(replace,allow_delete)\na: null\n"))
    assert result.cloud_config == {"b": 2}


def test_bad_merge_how_is_reported_and_the_default_used() -> None:
    result = process(_two("runcmd: [a]\n", "merge_how: 'list(append'\nruncmd: [b]\n"))
    assert [p.where for p in result.problems] == ["user-data part 2 (two) line 2"]
    assert DEFAULT_HOW in result.problems[0].message
    assert result.cloud_config == {"runcmd": ["b"]}


def test_chain_without_dict_merger_changes_nothing_and_says_so() -> None:
    result = process(_two("runcmd: [a]\n", "merge_how: 'list(append)'\nruncmd: [b]\n"))
    assert result.cloud_config == {"runcmd": ["a"]}
    assert ["no dict() merger" in p.message for p in result.problems] == [True]


@pytest.mark.parametrize(
    ("how", "base", "overlay", "expected"),
    [
        (None, {"a": {"x": 1}}, {"a": {"y": 2}}, {"a": {"y": 2}}),
        ("dict(no_replace)+list()", {"a": {"x": 1}}, {"a": {"y": 2}}, {"a": {"x": 1, "y": 2}}),
        ("dict(replace)+list(append)", {"l": [1]}, {"l": [2]}, {"l": [2]}),
        ("dict(recurse_array)+list(append)", {"l": [1]}, {"l": [2]}, {"l": [1, 2]}),
        ("dict(recurse_array)+list(prepend)", {"l": [1]}, {"l": [2]}, {"l": [2, 1]}),
        ("dict(recurse_array)+list(replace)", {"l": [1, 2, 3]}, {"l": [9]}, {"l": [9, 2, 3]}),
        ("dict(recurse_array)+list(no_replace)", {"l": [1, 2]}, {"l": [9, 8, 7]}, {"l": [1, 2]}),
        (
            "dict(recurse_array)+list(recurse_dict)",
            {"l": [{"a": 1}]},
            {"l": [{"b": 2}]},
            {"l": [{"a": 1, "b": 2}]},
        ),
        # no_replace only recurses into a list when the new value is one too.
        ("dict(recurse_array)+list()", {"l": [1]}, {"l": "text"}, {"l": [1]}),
        ("m_dict(no_replace)+m_list()", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ("DICT( Replace )", {"a": 1}, {"a": 2}, {"a": 2}),
    ],
)
def test_merge_config_api(how: str | None, base: dict, overlay: dict, expected: dict) -> None:
    before = repr((base, overlay))
    assert merge_config(base, overlay, how) == expected
    assert repr((base, overlay)) == before, "inputs must not be modified"


def test_list_merger_with_a_non_list() -> None:
    for how, expected in (
        ("list()", "text"),
        ("list(no_replace)", [1]),
        ("list(append)", [1, "text"]),
        ("list(prepend)", ["text", 1]),
    ):
        merged, _ = merge_traced([1], "text", Mergers.parse(how), None, None)
        assert merged == expected, how


def test_types_without_a_merger_keep_the_old_value() -> None:
    merged, _ = merge_traced([1], [2], Mergers.parse("dict()"), None, None)
    assert merged == [1]
    merged, _ = merge_traced(5, 6, Mergers.parse("dict()+list()+str()"), None, None)
    assert merged == 5


def test_merge_config_rejects_bad_chains() -> None:
    for bad in ("nope()", "dict", "dict(replace)+bogus(x)"):
        with pytest.raises(MergeSpecError):
            merge_config({}, {}, bad)
    with pytest.raises(MergeSpecError):
        parse_how([{"settings": ["x"]}])
    with pytest.raises(MergeSpecError):
        parse_how(42)


def test_parse_how_forms() -> None:
    assert parse_how("list(append)+dict(no_replace, recurse_list)+str()") == [
        ("list", ["append"]),
        ("dict", ["no_replace", "recurse_list"]),
        ("str", []),
    ]
    assert parse_how([["list", "append"], {"name": "dict", "settings": "replace"}]) == [
        ("list", ["append"]),
        ("dict", ["replace"]),
    ]
