from __future__ import annotations

from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.registry import load_registry, normalize_name
from bootseed.late.stages import plan_stage


def _noop(ctx: ModuleContext) -> None:
    pass


MOUNTS = ModuleSpec("mounts", Stage.CONFIG, Frequency.PER_INSTANCE,
                    {"properties": {"mounts": {"type": "array"}}}, _noop)


def test_scan_finds_module_files() -> None:
    reg = load_registry()
    for name in ("bootcmd", "runcmd", "scripts_user", "scripts_vendor", "scripts_per_boot",
                 "scripts_per_instance", "scripts_per_once", "final_message"):
        assert name in reg.specs, name
    assert reg.problems == []


def test_name_spellings() -> None:
    assert normalize_name("cc_users-groups") == "users_groups"
    assert normalize_name("Final-Message") == "final_message"
    reg = load_registry()
    assert reg.resolve("scripts-user") == "scripts_user"
    assert reg.resolve("final-message") == "final_message"
    assert reg.resolve("no-such-thing") is None


def test_default_order_follows_cloud_init() -> None:
    reg = load_registry()
    final = reg.default_order(Stage.FINAL)
    idx = final.index
    assert idx("scripts_vendor") < idx("scripts_per_once") < idx("scripts_per_boot")
    assert idx("scripts_per_boot") < idx("scripts_per_instance") < idx("scripts_user")
    assert idx("scripts_user") < idx("final_message")
    assert reg.default_order(Stage.INIT)[0] == "bootcmd"


def test_user_list_overrides_frequency_in_all_forms() -> None:
    reg = load_registry([MOUNTS])
    cfg = {"cloud_config_modules": [
        ["mounts", "always"], {"name": "runcmd", "frequency": "once"}, "final-message",
    ]}
    plan, problems = plan_stage(Stage.CONFIG, cfg, reg)
    assert problems == []
    assert [(p.name, p.frequency) for p in plan] == [
        ("mounts", Frequency.PER_BOOT), ("runcmd", Frequency.PER_ONCE),
        ("final_message", Frequency.PER_BOOT),
    ]
    assert all(p.origin == "cloud_config_modules" for p in plan)


def test_default_plan_without_list() -> None:
    reg = load_registry([MOUNTS])
    plan, problems = plan_stage(Stage.CONFIG, {}, reg)
    assert problems == []
    names = [p.name for p in plan]
    assert names[0] == "runcmd" and "mounts" in names
    assert all(p.origin == "default" for p in plan)


def test_bad_entries_are_reported_and_skipped() -> None:
    reg = load_registry()
    cfg = {"cloud_final_modules": [
        "nonexistent", ["scripts_user", "sometimes"], 42, {"frequency": "always"},
        "final_message", "final-message",
    ]}
    plan, problems = plan_stage(Stage.FINAL, cfg, reg)
    assert [(p.name, p.frequency) for p in plan] == [
        ("scripts_user", Frequency.PER_INSTANCE), ("final_message", Frequency.PER_BOOT),
    ]
    wheres = [p.where for p in problems]
    assert wheres == ["cloud_final_modules[0]", "cloud_final_modules[1]",
                      "cloud_final_modules[2]", "cloud_final_modules[3]",
                      "cloud_final_modules[5]"]
    assert "nonexistent" in problems[0].message
    assert "sometimes" in problems[1].message


def test_list_not_a_list_falls_back_to_defaults() -> None:
    reg = load_registry()
    plan, problems = plan_stage(Stage.CONFIG, {"cloud_config_modules": "runcmd"}, reg)
    assert [p.name for p in plan][:1] == ["runcmd"]
    assert problems and problems[0].where == "cloud_config_modules"
