from __future__ import annotations

import pytest
import yaml
from bootseed.late.userdata.yamlmarks import YamlLimitError, load_with_marks


def test_marks_for_keys_and_items() -> None:
    text = "#cloud-config\nusers:\n  - name: a\n    groups: [x, y]\n  - default\nhostname: h\n"
    data, marks = load_with_marks(text)
    assert data == {"users": [{"name": "a", "groups": ["x", "y"]}, "default"], "hostname": "h"}
    assert marks == {
        ("users",): 2,
        ("users", 0): 3,
        ("users", 0, "name"): 3,
        ("users", 0, "groups"): 4,
        ("users", 0, "groups", 0): 4,
        ("users", 0, "groups", 1): 4,
        ("users", 1): 5,
        ("hostname",): 6,
    }


def test_repeated_key_marks_the_last_occurrence_and_merge_keys_resolve() -> None:
    data, marks = load_with_marks("a: 1\nbase: &b {x: 1}\nm:\n  <<: *b\n  y: 2\na: 2\n")
    assert data["a"] == 2
    assert marks[("a",)] == 6
    assert data["m"] == {"x": 1, "y": 2}
    assert marks[("m", "y")] == 5


def test_empty_document() -> None:
    assert load_with_marks("# only a comment\n") == (None, {})


def test_errors() -> None:
    with pytest.raises(yaml.YAMLError):
        load_with_marks("a: [1\n")
    with pytest.raises(yaml.YAMLError):
        load_with_marks("a: 1\n---\nb: 2\n")
    with pytest.raises(yaml.YAMLError):
        load_with_marks("!!python/name:os.system\n")
    with pytest.raises(YamlLimitError):
        load_with_marks("a: &a [*a]\n")
    with pytest.raises(YamlLimitError):
        load_with_marks("x: " + "[" * 200 + "]" * 200)
    with pytest.raises(YamlLimitError):
        load_with_marks("x: [1, 2, 3, 4, 5]\n", max_nodes=5)
