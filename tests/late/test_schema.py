from __future__ import annotations

import pytest
from bootseed.late.model import Frequency, Stage
from bootseed.late.modules.base import ModuleContext, ModuleSpec
from bootseed.late.registry import load_registry
from bootseed.late.schema import (
    RUNNER_OWNER,
    SchemaConflictError,
    build_schema,
    key_owners,
    locate,
    validate,
)


def test_schema_is_assembled_from_fragments() -> None:
    schema = build_schema(load_registry())
    props = schema["properties"]
    for key in ("bootcmd", "runcmd", "final_message", "vendor_data", "cloud_final_modules"):
        assert key in props


def test_problems_carry_lines_and_unknown_keys_are_warnings() -> None:
    cfg = {"runcmd": "not-a-list", "final_message": 3, "no_such_key": ["vim"],
           "bootcmd": ["echo ok", {"x": 1}]}
    origins = {("runcmd",): "user-data part 1 line 2", ("final_message",): "user-data line 3",
               ("no_such_key",): "user-data line 4", ("bootcmd",): "user-data line 5",
               ("bootcmd", 1): "user-data line 7"}
    problems = validate(cfg, load_registry(), origins)
    by_where = {p.where: p for p in problems}
    assert by_where["user-data part 1 line 2: runcmd"].level == "error"
    assert by_where["user-data line 3: final_message"].level == "error"
    assert by_where["user-data line 7: bootcmd[1]"].level == "error"
    unknown = by_where["user-data line 4: no_such_key"]
    assert unknown.level == "warning" and "unknown key" in unknown.message
    assert len(problems) == 4


def test_valid_config_has_no_problems() -> None:
    cfg = {"runcmd": ["ls", ["echo", "a b"]], "cloud_config_modules": [["runcmd", "always"]],
           "final_message": "done $UPTIME"}
    assert validate(cfg, load_registry()) == []


def test_locate_falls_back_to_nearest_parent() -> None:
    origins = {("users",): "f line 1"}
    assert locate(("users", 2, "name"), origins) == "f line 1: users[2].name"
    assert locate(("x",), {}) == "x"


# -- one owner per top-level key ---------------------------------------------------

def _noop(ctx: ModuleContext) -> None:
    pass


def _claiming(name: str, *keys: str) -> ModuleSpec:
    return ModuleSpec(name, Stage.CONFIG, Frequency.PER_INSTANCE,
                      {"properties": {key: {"type": "string"} for key in keys}}, _noop, order=500)


def test_every_key_has_one_owner_and_activation_is_not_ownership() -> None:
    registry = load_registry()
    owners = key_owners(registry)
    assert set(owners) == set(build_schema(registry)["properties"])
    # Both activate on write_files; only write_files owns (and validates) it.
    assert "write_files" in registry.meta("write_files_deferred").activate_keys
    assert "write_files" in registry.meta("write_files").activate_keys
    assert owners["write_files"] == "write_files"
    assert owners["no_ssh_fingerprints"] == "ssh_authkey_fingerprints"
    assert owners["cloud_final_modules"] == RUNNER_OWNER
    assert owners["runcmd"] == "runcmd"


def test_two_modules_claiming_a_key_are_refused() -> None:
    registry = load_registry([_claiming("disk_report", "disk_report", "runcmd")])
    with pytest.raises(SchemaConflictError) as caught:
        build_schema(registry)
    assert str(caught.value).startswith(
        "schema key 'runcmd' is claimed by both runcmd and disk_report")
    with pytest.raises(SchemaConflictError, match="claimed by both runcmd and disk_report"):
        key_owners(registry)
    with pytest.raises(SchemaConflictError, match="claimed by both runcmd and disk_report"):
        validate({"runcmd": ["ls"]}, registry)


def test_a_module_claiming_a_runner_key_is_refused() -> None:
    registry = load_registry([_claiming("lists", "cloud_init_modules")])
    with pytest.raises(SchemaConflictError,
                       match=r"'cloud_init_modules' is claimed by both \(runner\) and lists"):
        build_schema(registry)


def test_two_modules_defining_one_def_name_are_refused() -> None:
    def with_def(name: str) -> ModuleSpec:
        return ModuleSpec(name, Stage.CONFIG, Frequency.PER_INSTANCE,
                          {"properties": {name: {"$ref": "#/$defs/entry"}},
                           "$defs": {"entry": {"type": "string"}}}, _noop, order=500)

    registry = load_registry([with_def("one"), with_def("two")])
    with pytest.raises(SchemaConflictError, match=r"\$defs name 'entry' .* both one and two"):
        build_schema(registry)
    assert build_schema(load_registry([with_def("one")]))["$defs"] == {
        "entry": {"type": "string"}}


def test_user_entries_warn_about_unknown_and_misspelt_keys() -> None:
    from bootseed.contract.problems import Level
    from bootseed.late.registry import load_registry
    from bootseed.late.schema import validate

    cfg = {"users": ["default", {
        "name": "alice", "ssh-authorized-keys": ["ssh-ed25519 AAAA x"], "ssh_pwauth": True,
        "shel": "/bin/bash", "sudo": ["ALL=(ALL) NOPASSWD:ALL"], "ssh_import_id": "gh:alice",
    }]}
    problems = validate(cfg, load_registry())
    by_where = {p.where: p for p in problems}
    noted = {"users[1].ssh_import_id", "users[1].sudo"}
    assert {p.level for p in problems if p.where not in noted} == {Level.WARNING}
    misspelt = by_where["users[1].ssh-authorized-keys"]
    assert "'ssh_authorized_keys'" in misspelt.message
    assert "top-level key" in by_where["users[1].ssh_pwauth"].message
    assert "did you mean 'shell'?" in by_where["users[1].shel"].message
    # What cloud-init's runtime accepts but its schema does not: a note, not a warning.
    assert by_where["users[1].ssh_import_id"].level is Level.NOTE
    # A list of sudo rules: cloud-init 22.4's schema wants a string, its runtime
    # takes the list (the schema took it only in 24.2).
    assert by_where["users[1].sudo"].level is Level.NOTE
    assert "sudo as a list" in by_where["users[1].sudo"].message
    assert len(problems) == 5


def test_lint_follows_the_alternative_the_value_takes() -> None:
    from bootseed.contract.problems import Level
    from bootseed.late.schema import lint

    schema = {"properties": {"a": {"oneOf": [
        {"type": "string", "x-note": "string form"},
        {"type": "array", "items": {"type": "object", "properties": {"k": {}},
                                    "x-unknown-keys": "warn"}},
    ]}}}
    assert [(p.where, p.level) for p in lint({"a": "x"}, schema)] == [("a", Level.NOTE)]
    found = lint({"a": [{"k": 1}, {"k": 1, "kk": 2}]}, schema)
    assert [(p.where, p.level) for p in found] == [("a[1].kk", Level.WARNING)]
    assert "did you mean 'k'?" in found[0].message
    assert lint({"a": 5}, schema) == []
