from __future__ import annotations

from bootseed.late.registry import load_registry
from bootseed.late.schema import build_schema, locate, validate


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
