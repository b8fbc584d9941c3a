"""The per-instance schema verdict cache (schema-validated.json)."""

from __future__ import annotations

import datetime
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Problem
from bootseed.late import schemacache
from bootseed.late.registry import Registry, load_registry
from bootseed.late.schema import validate
from bootseed.late.schemacache import validate_cached

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_target

CFG: dict[str, Any] = {"runcmd": "not a list", "no_such_key": 1, "hostname": "h"}
ORIGINS = {("runcmd",): "user-data line 2", ("no_such_key",): "user-data line 3"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(lazy=True)


class Counter:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.validations = 0
        self.schemas = 0
        real_validate, real_build = schemacache.validate, schemacache.build_schema

        def counting_validate(*args: Any, **kw: Any) -> list[Problem]:
            self.validations += 1
            return real_validate(*args, **kw)

        def counting_build(*args: Any, **kw: Any) -> dict[str, Any]:
            self.schemas += 1
            return real_build(*args, **kw)

        monkeypatch.setattr(schemacache, "validate", counting_validate)
        monkeypatch.setattr(schemacache, "build_schema", counting_build)


def test_second_call_reuses_the_verdict(tmp_path: Path, registry: Registry,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    cache = tmp_path / "inst" / "schema-validated.json"
    first = validate_cached(CFG, registry, ORIGINS, cache)
    assert first == validate(CFG, load_registry(), ORIGINS)
    assert {p.level for p in first} == {"error", "warning"}
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert not list(cache.parent.glob(".*tmp*"))
    assert (count.validations, count.schemas) == (1, 1)
    again = validate_cached(CFG, registry, ORIGINS, cache)
    assert again == first
    assert (count.validations, count.schemas) == (1, 1)


@pytest.mark.parametrize("change", [
    {"runcmd": ["ok"], "no_such_key": 1, "hostname": "h"},   # a value
    {"runcmd": "not a list", "no_such_key": "1", "hostname": "h"},  # a type only
    {"runcmd": "not a list", "hostname": "h", "no_such_key": 1},  # the key order
])
def test_a_changed_config_is_validated_again(tmp_path: Path, registry: Registry,
                                             monkeypatch: pytest.MonkeyPatch,
                                             change: dict[str, Any]) -> None:
    count = Counter(monkeypatch)
    cache = tmp_path / "schema-validated.json"
    validate_cached(CFG, registry, ORIGINS, cache)
    got = validate_cached(change, registry, ORIGINS, cache)
    assert count.validations == 2
    assert got == validate(change, load_registry(), ORIGINS)


def test_moved_lines_are_validated_again(tmp_path: Path, registry: Registry,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    cache = tmp_path / "schema-validated.json"
    validate_cached(CFG, registry, ORIGINS, cache)
    moved = {("runcmd",): "user-data line 7", ("no_such_key",): "user-data line 3"}
    got = validate_cached(CFG, registry, moved, cache)
    assert count.validations == 2
    assert any(p.where.startswith("user-data line 7") for p in got)


@pytest.mark.parametrize("damage", [
    "", "not json", "[]", "{}", '{"format": 1}',
    "problems-not-a-list", "bad-level", "short-item", "other-format",
])
def test_a_damaged_cache_is_validated_again(tmp_path: Path, registry: Registry,
                                            monkeypatch: pytest.MonkeyPatch,
                                            damage: str) -> None:
    count = Counter(monkeypatch)
    cache = tmp_path / "schema-validated.json"
    first = validate_cached(CFG, registry, ORIGINS, cache)
    doc = json.loads(cache.read_text())
    if damage == "problems-not-a-list":
        doc["problems"] = "x"
    elif damage == "bad-level":
        doc["problems"][0][2] = "fatal"
    elif damage == "short-item":
        doc["problems"][0] = doc["problems"][0][:2]
    elif damage == "other-format":
        doc["format"] = 99
    text = json.dumps(doc) if damage in ("problems-not-a-list", "bad-level", "short-item",
                                         "other-format") else damage
    cache.write_text(text)
    assert validate_cached(CFG, registry, ORIGINS, cache) == first
    assert count.validations == 2
    # ... and repaired: the next call reuses it.
    assert validate_cached(CFG, registry, ORIGINS, cache) == first
    assert count.validations == 2


def test_changed_code_with_the_same_schema_reuses_the_verdict(
        tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    cache = tmp_path / "schema-validated.json"
    first = validate_cached(CFG, registry, ORIGINS, cache)
    doc = json.loads(cache.read_text())
    doc["code"] = "0" * 64  # as after a package upgrade
    cache.write_text(json.dumps(doc))
    assert validate_cached(CFG, registry, ORIGINS, cache) == first
    assert (count.validations, count.schemas) == (1, 2)
    assert json.loads(cache.read_text())["code"] != "0" * 64


def test_a_changed_schema_is_validated_again(tmp_path: Path, registry: Registry,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    count = Counter(monkeypatch)
    cache = tmp_path / "schema-validated.json"
    validate_cached(CFG, registry, ORIGINS, cache)
    doc = json.loads(cache.read_text())
    doc["code"] = doc["schema_sha256"] = "0" * 64  # new code with a new schema
    doc["problems"] = []
    cache.write_text(json.dumps(doc))
    got = validate_cached(CFG, registry, ORIGINS, cache)
    assert count.validations == 2 and got != []


def test_an_unwritable_cache_only_costs_the_next_validation(
        tmp_path: Path, registry: Registry) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    got = validate_cached(CFG, registry, ORIGINS, blocker / "schema-validated.json")
    assert got == validate(CFG, load_registry(), ORIGINS)


def test_canonical_keeps_what_json_blurs() -> None:
    key = schemacache.digest
    assert len({key({"a": 1}), key({"a": "1"}), key({"a": True}), key({"a": 1.0}),
                key({1: 1}), key({"a": [1]}), key({"a": (1,)}),
                key({"a": datetime.date(2020, 1, 1)}), key({"a": "2020-01-01"})}) == 9


# -- through the runner, in a fresh interpreter --------------------------------

_RUN = """
import json, sys
from pathlib import Path
from bootseed.late.runner import RunOptions, Runner
status = Runner(RunOptions(root=Path(sys.argv[1]), network_timeout=0,
                           console=lambda line: None)).run()
print(json.dumps({"jsonschema": "jsonschema" in sys.modules,
                  "problems": [[p.where, p.message, p.level] for p in status.problems],
                  "state": status.state}))
"""


def _boot(root: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _RUN, str(root)], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def _plant(root: Path, user_data: str) -> None:
    from testsupport.runenv import plant_seed

    plant_seed(root, user_data)


def test_second_boot_does_not_import_jsonschema(tmp_path: Path) -> None:
    root = make_shell_root(make_target(tmp_path / "root").root).root
    _plant(root, "#cloud-config\nruncmd: oops\nnot_a_bootseed_key: 1\n")
    first = _boot(root)
    assert first["jsonschema"] is True
    levels = {p[2] for p in first["problems"]}
    assert {"error", "warning"} <= levels, first
    cache = root / "var/lib/bootseed/instances/i-0001/schema-validated.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    second = _boot(root)
    assert second["jsonschema"] is False
    assert second["problems"] == first["problems"]
    assert second["state"] == first["state"]
    # New user-data for the same instance: validated again.
    _plant(root, "#cloud-config\nruncmd: [fine]\nanother_unknown: 2\n")
    third = _boot(root)
    assert third["jsonschema"] is True
    assert any("another_unknown" in p[1] for p in third["problems"])
    assert not any("not_a_bootseed_key" in p[1] for p in third["problems"])
