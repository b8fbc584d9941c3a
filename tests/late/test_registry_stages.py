from __future__ import annotations

from bootseed.late.model import Frequency, ModuleFacts, Stage
from bootseed.late.modules.base import ModuleContext, ModuleSpec
from bootseed.late.registry import load_registry, normalize_name
from bootseed.late.stages import plan_stage


def _noop(ctx: ModuleContext) -> None:
    pass


# A stand-in config-stage module (the real ``mounts`` is an init-stage module).
MOUNTS = ModuleSpec("disk_report", Stage.CONFIG, Frequency.PER_INSTANCE,
                    {"properties": {"disk_report": {"type": "array"}}}, _noop, order=150)


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
    # cloud-init 22.4 seeds the random pool before anything else (then bootcmd).
    assert reg.default_order(Stage.INIT)[:4] == ["network_config", "metadata_lockdown",
                                                 "seed_random", "bootcmd"]


def test_user_list_overrides_frequency_in_all_forms() -> None:
    reg = load_registry([MOUNTS])
    cfg = {"cloud_config_modules": [
        ["disk_report", "always"], {"name": "runcmd", "frequency": "once"}, "final-message",
    ]}
    plan, problems = plan_stage(Stage.CONFIG, cfg, reg)
    assert problems == []
    assert [(p.name, p.frequency) for p in plan] == [
        ("disk_report", Frequency.PER_BOOT), ("runcmd", Frequency.PER_ONCE),
        ("final_message", Frequency.PER_BOOT),
    ]
    assert all(p.origin == "cloud_config_modules" for p in plan)


def test_default_plan_without_list() -> None:
    reg = load_registry([MOUNTS])
    plan, problems = plan_stage(Stage.CONFIG, {}, reg)
    assert problems == []
    names = [p.name for p in plan]
    # The stage's built-in modules in their spec order (other built-ins slot in between).
    builtin = ["ssh_import_id", "keyboard", "locale", "set_passwords", "apt_pipelining",
               "apt_configure", "ntp", "timezone", "resolv_conf", "runcmd"]
    assert [n for n in names if n in builtin] == builtin and "disk_report" in names
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
    assert [p.name for p in plan] == list(reg.default_order(Stage.CONFIG))
    assert problems and problems[0].where == "cloud_config_modules"


# -- the lazy registry the runner uses -------------------------------------------

def test_index_matches_every_module_file() -> None:
    """modindex must say what each module's own MODULE says, for every module file,
    or the runner would plan with stale facts (or import the file eagerly)."""
    from bootseed.late.modindex import INDEX

    eager = load_registry()
    assert eager.problems == []
    assert sorted(INDEX) == sorted(eager.specs)
    for name, spec in eager.specs.items():
        assert INDEX[name] == spec.facts(), name


def test_lazy_registry_plans_like_the_eager_one() -> None:
    eager, lazy = load_registry([MOUNTS]), load_registry([MOUNTS], lazy=True)
    assert list(lazy.known) == list(eager.known)
    assert lazy.aliases == eager.aliases
    assert lazy.problems == eager.problems == []
    cfgs: list[dict[str, object]] = [
        {},
        {"cloud_final_modules": ["nonexistent", ["scripts_user", "sometimes"], 42,
                                 "final-message", "final_message", {"name": "disk_report"}]},
        {"cloud_config_modules": "not a list"},
        {"cloud_init_modules": [["cc_users-groups", "always"], "Write-Files", "ssh"]},
    ]
    for cfg in cfgs:
        for stage in Stage:
            assert lazy.default_order(stage) == eager.default_order(stage)
            assert plan_stage(stage, cfg, lazy) == plan_stage(stage, cfg, eager), (stage, cfg)
    assert [s.name for s in lazy.all_specs()] == [s.name for s in eager.specs.values()]


def test_lazy_registry_imports_a_module_only_when_loaded() -> None:
    import subprocess
    import sys

    code = """
import sys
from bootseed.late.registry import load_registry
from bootseed.late.stages import plan_stage
from bootseed.late.modules.base import Stage
reg = load_registry(lazy=True)
for stage in Stage:
    plan_stage(stage, {}, reg)
before = sorted(m for m in sys.modules if m.startswith("bootseed.late.modules."))
spec = reg.load("bootcmd")
after = sorted(m for m in sys.modules if m.startswith("bootseed.late.modules."))
print(before, after, spec.name, reg.get("final-message").name, reg.problems)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["['bootseed.late.modules.base']",
                   "['bootseed.late.modules.base',", "'bootseed.late.modules.bootcmd']",
                   "bootcmd", "final_message", "[]"]


def test_an_extra_module_with_a_known_name_is_a_problem_in_both_modes() -> None:
    dup = ModuleSpec("runcmd", Stage.FINAL, Frequency.PER_BOOT, {}, _noop, order=10)
    for lazy in (False, True):
        reg = load_registry([dup], lazy=lazy)
        assert [p.message for p in reg.problems] == ["module 'runcmd' defined twice; kept first"]
        assert reg.meta("runcmd").stage is Stage.CONFIG
        spec = reg.load("runcmd")
        assert spec is not None and spec.stage is Stage.CONFIG


def test_a_lazy_module_that_fails_to_import_is_a_problem_not_a_crash() -> None:
    reg = load_registry(lazy=True)
    reg._know(ModuleFacts("ghost", Stage.FINAL, 10, Frequency.PER_BOOT),
              "bootseed.late.modules.ghost")
    assert reg.load("ghost") is None
    assert len(reg.problems) == 1
    assert reg.problems[0].where == "bootseed.late.modules.ghost"
    assert reg.problems[0].message.startswith("import failed: ModuleNotFoundError")
    assert [s.name for s in reg.all_specs()] == [
        s.name for s in load_registry().specs.values()]
