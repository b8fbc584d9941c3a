"""The runner end to end on temp target roots (real files, real chroot, real state)."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.stages import RunStage
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.runenv import Agent, module, plant_seed
from testsupport.targetfs import make_target

USER_DATA = """#cloud-config
bootcmd:
  - echo boot >> /bootcmd-count
runcmd:
  - echo run >> /runcmd-count
final_message: "all done after $UPTIME s"
"""


def _counter_module(name: str, stage: Stage, freq: Frequency, fail_file: str | None = None):
    def handle(ctx: ModuleContext) -> None:
        if fail_file and ctx.target.path(fail_file).exists():
            raise RuntimeError(f"{name} told to fail")
        with open(ctx.target.path(f"/{name}-count"), "a") as fh:
            fh.write("x\n")

    return ModuleSpec(name, stage, freq, {"properties": {name: {"type": "object"}}}, handle,
                      order=500)


def _lines(target: TargetRoot, inside: str) -> int:
    path = target.path(inside)
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    """Account files (for users_groups) and a shell (for commands) in a temp root."""
    return make_shell_root(make_target(tmp_path / "root").root)


def test_first_boot_runs_everything_and_writes_results(target: TargetRoot) -> None:
    plant_seed(target.root, USER_DATA)
    run = Agent(target.root).run()
    status = run.status
    assert status.state == "done", (status.errors, status.modules, run.log)
    assert status.instance_id == "i-0001" and status.new_instance
    assert status.config_stage == "local"
    assert _lines(target, "/bootcmd-count") == 1 and _lines(target, "/runcmd-count") == 1
    assert module(run, "bootcmd").stage == "local"
    assert module(run, "runcmd").stage == "config"
    assert module(run, "scripts_user").status == "ok"
    assert any("all done after" in line for line in run.console)
    base = target.path("/var/lib/bootseed")
    assert (base / "instance/boot-finished").exists()
    assert (base / "instances/i-0001/sem/runcmd").exists()
    assert not (base / "instances/i-0001/sem/bootcmd").exists()  # per-boot: no semaphore
    assert stat.S_IMODE((base / "instances/i-0001/user-data.txt").stat().st_mode) == 0o600
    assert stat.S_IMODE((base / "instances/i-0001/cloud-config.json").stat().st_mode) == 0o600
    run_dir = target.path("/run/bootseed")
    doc = json.loads((run_dir / "status.json").read_text())
    assert stat.S_IMODE((run_dir / "status.json").stat().st_mode) == 0o644
    assert doc["state"] == "done" and doc["no_seed"] is False
    assert set(doc["stages"]) == {"local", "network", "config", "final"}
    assert all(t["duration"] is not None for t in doc["stages"].values())
    assert isinstance(doc["boot_finished_uptime"], float)
    for entry in doc["modules"]:
        assert {"name", "stage", "frequency", "status", "duration", "error"} <= set(entry)
    assert json.loads((run_dir / "result.json").read_text())["v1"]["errors"] == []
    log = target.path("/var/log/bootseed.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    assert "stage final: done" in log.read_text()
    assert stat.S_IMODE(target.path("/var/log/user_data.log").stat().st_mode) == 0o600


def test_same_instance_skips_per_instance_new_instance_reruns(target: TargetRoot) -> None:
    plant_seed(target.root, USER_DATA)
    agent = Agent(target.root)
    agent.run()
    second = agent.run()
    assert second.status.state == "done"
    assert not second.status.new_instance
    assert _lines(target, "/bootcmd-count") == 2  # per-boot
    assert _lines(target, "/runcmd-count") == 1  # per-instance: not again
    assert module(second, "runcmd").status == "skipped"
    assert module(second, "scripts_user").reason == "already ran (per-instance)"

    plant_seed(target.root, USER_DATA, instance_id="i-0002")
    third = agent.run()
    assert third.status.new_instance and third.status.previous_instance_id == "i-0001"
    assert _lines(target, "/runcmd-count") == 2
    assert os.readlink(target.path("/var/lib/bootseed/instance")) == "instances/i-0002"
    assert target.path("/var/lib/bootseed/data/previous-instance-id").read_text() == "i-0001\n"


def test_frequency_override_from_cloud_config(target: TargetRoot) -> None:
    # The seed ask: "run config-mounts on every boot" (here with a stand-in module).
    report = _counter_module("disk_report", Stage.CONFIG, Frequency.PER_INSTANCE)
    agent = Agent(target.root, extra=(report,))
    plant_seed(target.root, "#cloud-config\ndisk_report: {}\n")
    agent.run()
    agent.run()
    assert _lines(target, "/disk_report-count") == 1
    plant_seed(target.root, "#cloud-config\ndisk_report: {}\ncloud_config_modules:\n"
                            "  - [disk_report, always]\n  - runcmd\n")
    third = agent.run()
    agent.run()
    assert _lines(target, "/disk_report-count") == 3
    assert module(third, "disk_report").frequency == "per-boot"


def test_failing_module_is_recorded_and_the_rest_run(target: TargetRoot) -> None:
    flaky = _counter_module("flaky", Stage.CONFIG, Frequency.PER_INSTANCE, fail_file="/fail")
    target.path("/fail").write_text("")
    plant_seed(target.root, "#cloud-config\nbootcmd: ['exit 7']\nruncmd: ['echo r > /r']\n")
    agent = Agent(target.root, extra=(flaky,))
    run = agent.run()
    assert run.status.state == "error"
    boot = module(run, "bootcmd")
    assert boot.status == "failed" and "exited with status 7" in boot.error
    assert boot.exception == "TargetExecError" and boot.duration > 0
    assert module(run, "flaky").status == "failed"
    assert target.path("/r").exists()  # later modules still ran
    # No semaphore after a failure: it is due again, and succeeds now.
    assert not target.path("/var/lib/bootseed/instances/i-0001/sem/flaky").exists()
    target.path("/fail").unlink()
    again = agent.run()
    assert module(again, "flaky").status == "ok"
    assert target.path("/var/lib/bootseed/instances/i-0001/sem/flaky").exists()
    result = json.loads(target.path("/run/bootseed/result.json").read_text())
    assert any(e.startswith("bootcmd: ") for e in result["v1"]["errors"])


def test_schema_problems_name_lines_and_do_not_stop_modules(target: TargetRoot) -> None:
    plant_seed(target.root, "#cloud-config\nno_such_key: [vim]\nruncmd: 5\n"
                            "final_message: ok\n")
    run = Agent(target.root).run()
    wheres = {p.where: p for p in run.status.problems}
    unknown = [p for w, p in wheres.items() if "no_such_key" in w]
    assert unknown and unknown[0].level == "warning" and "line 2" in unknown[0].where
    bad = [p for w, p in wheres.items() if w.endswith("runcmd")]
    assert bad and bad[0].level == "error" and "line 3" in bad[0].where
    assert module(run, "runcmd").status == "failed"
    assert module(run, "final_message").status == "ok"
    doc = json.loads(target.path("/run/bootseed/status.json").read_text())
    assert doc["state"] == "error"


def test_problems_only_make_the_run_degraded(target: TargetRoot) -> None:
    plant_seed(target.root, "#cloud-config\nno_such_key: [vim]\n")
    run = Agent(target.root).run()
    doc = run.status.to_json()
    assert doc["state"] == "done" and doc["degraded"] is True


def test_no_seed_finishes_quickly(tmp_path: Path) -> None:
    root = tmp_path / "root"
    plant_seed(root, None, instance_id=None, source="none")
    started = time.monotonic()
    run = Agent(root).run()
    assert time.monotonic() - started < 5
    doc = json.loads((root / "run/bootseed/status.json").read_text())
    assert doc["state"] == "done" and doc["no_seed"] is True
    assert run.status.modules == []
    assert not (root / "var/lib/bootseed").exists()


def test_disabled(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/bootseed").mkdir(parents=True)
    (root / "etc/bootseed/disabled").write_text("")
    plant_seed(root, USER_DATA)
    run = Agent(root).run()
    assert run.status.state == "disabled" and run.status.modules == []


def test_unusable_seed_cache_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run/bootseed").mkdir(parents=True)
    (root / "run/bootseed/seed.json").write_text("{not json")
    run = Agent(root).run()
    assert run.status.state == "error"
    assert "seed cache unusable" in run.status.errors[0]


def test_split_stages_continue_the_same_boot(target: TargetRoot) -> None:
    plant_seed(target.root, USER_DATA)
    agent = Agent(target.root)
    local = agent.run(stages=(RunStage.LOCAL,))
    assert local.status.state == "running" and _lines(target, "/bootcmd-count") == 1
    # config without network first: the missing network stage runs before it.
    config = agent.run(stages=(RunStage.CONFIG,))
    assert config.status.state == "running"
    assert set(config.status.stages) == {"local", "network", "config"}
    assert _lines(target, "/bootcmd-count") == 1  # init modules ran once this boot
    final = agent.run(stages=(RunStage.FINAL,))
    assert final.status.state == "done"
    assert _lines(target, "/runcmd-count") == 1
    assert {m.stage for m in final.status.modules} == {"local", "config", "final"}


def test_include_user_data_waits_for_network_stage(target: TargetRoot) -> None:
    plant_seed(target.root, "#include\nhttp://127.0.0.1:9/absent.yaml\n")
    run = Agent(target.root).run()
    assert run.status.config_stage == "network"
    assert any("absent.yaml" in p.where + p.message for p in run.status.problems)


def test_notify_sends_ready(target: TargetRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    plant_seed(target.root, USER_DATA)
    sock_path = target.root.parent / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(sock_path))
        server.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
        run = Agent(target.root).run(notify=True)
        assert server.recv(4096).startswith(b"READY=1")
    assert run.status.state == "done"


def test_target_without_shell_refuses_commands(tmp_path: Path) -> None:
    root = make_target(tmp_path / "root").root
    plant_seed(root, USER_DATA)
    run = Agent(root).run()
    boot = module(run, "bootcmd")
    assert boot.status == "failed" and "without /bin/sh" in boot.error
    assert module(run, "final_message").status == "ok"


def test_shell_script_user_data_runs_once(target: TargetRoot) -> None:
    plant_seed(target.root, "#!/bin/sh\necho script >> /script-count\n")
    agent = Agent(target.root)
    agent.run()
    agent.run()
    assert _lines(target, "/script-count") == 1


def test_per_boot_script_part_and_boothook(target: TargetRoot) -> None:
    boundary = "BOUNDARY42"
    mime = (
        f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n'
        f"--{boundary}\nContent-Type: text/x-shellscript-per-boot\n"
        'Content-Disposition: attachment; filename="every-boot.sh"\n\n'
        "#!/bin/sh\necho b >> /per-boot-count\n"
        f"--{boundary}\nContent-Type: text/cloud-boothook\n\n"
        "#cloud-boothook\necho $INSTANCE_ID >> /boothook\n"
        f"--{boundary}--\n"
    )
    plant_seed(target.root, mime)
    agent = Agent(target.root)
    agent.run()
    agent.run()
    assert _lines(target, "/per-boot-count") == 2
    assert target.path("/boothook").read_text() == "i-0001\ni-0001\n"
    assert target.path("/var/lib/bootseed/scripts/per-boot/every-boot.sh").exists()


def test_vendor_data_merges_under_user_data(target: TargetRoot) -> None:
    plant_seed(target.root,
               "#cloud-config\nfinal_message: from user\n",
               vendor_data="#cloud-config\nfinal_message: from vendor\n"
                           "runcmd: ['echo v > /vendor-runcmd']\n")
    run = Agent(target.root).run()
    assert "from user" in run.console and "from vendor" not in run.console
    assert target.path("/vendor-runcmd").exists()


def test_system_config_is_the_base(target: TargetRoot) -> None:
    cfg_dir = target.path("/etc/bootseed")
    cfg_dir.mkdir(parents=True)
    (cfg_dir / "bootseed.cfg").write_text("final_message: from system\nbogus_key: 1\n")
    plant_seed(target.root, "#cloud-config\nruncmd: ['true']\n")
    run = Agent(target.root).run()
    assert "from system" in run.console
    assert any(p.where.startswith("/etc/bootseed/bootseed.cfg line 2")
               for p in run.status.problems)


def test_discovers_seed_without_cache(target: TargetRoot) -> None:
    # A NoCloud seed directory inside the target is found before any disc or network
    # source is tried, so this stays on the local filesystem.
    seed_dir = target.path("/var/lib/bootseed/seed/nocloud")
    seed_dir.mkdir(parents=True)
    (seed_dir / "meta-data").write_text("instance-id: i-disc\nlocal-hostname: found\n")
    (seed_dir / "user-data").write_text("#cloud-config\nruncmd: ['echo d > /discovered']\n")
    run = Agent(target.root).run()
    assert run.status.state == "done", run.status.errors
    assert run.status.instance_id == "i-disc" and run.status.source.lower().startswith("nocloud")
    assert target.path("/discovered").exists()
    manifest = json.loads(target.path("/run/bootseed/seed.json").read_text())
    assert manifest["instance_id"] == "i-disc" and manifest["stage"] == "late"
    assert stat.S_IMODE(target.path("/run/bootseed/seed.json").stat().st_mode) == 0o600


def test_early_no_seed_still_finds_a_seed_dir_on_the_real_root(target: TargetRoot) -> None:
    # The initramfs cannot see /var/lib/bootseed/seed on the real root: its "no seed"
    # must not hide a seed directory baked into the image.
    from bootseed.contract.actions import EarlyStage
    from bootseed.contract.problems import Level, Problem
    from bootseed.contract.seedcache import Seed, write_seed_cache

    early_stage = EarlyStage(decision="network not needed")
    early = Seed(source="none", stage="early", actions=[early_stage],
                 problems=[Problem("premount", "no network seed", Level.WARNING)])
    write_seed_cache(early, target.path("/run/bootseed"))
    seed_dir = target.path("/var/lib/bootseed/seed/nocloud")
    seed_dir.mkdir(parents=True)
    (seed_dir / "meta-data").write_text("instance-id: i-baked\n")
    (seed_dir / "user-data").write_text("#cloud-config\nruncmd: ['echo b > /baked']\n")
    run = Agent(target.root).run()
    assert run.status.state == "done", run.status.errors
    assert run.status.instance_id == "i-baked" and not run.status.no_seed
    assert target.path("/baked").exists()
    manifest = json.loads(target.path("/run/bootseed/seed.json").read_text())
    assert manifest["stage"] == "late" and manifest["instance_id"] == "i-baked"
    assert early_stage.to_dict() in manifest["actions"]
    assert any(p["where"] == "premount" for p in manifest["problems"])


def test_early_no_seed_and_nothing_on_the_real_root_stays_no_seed(target: TargetRoot) -> None:
    from bootseed.contract.seedcache import Seed, write_seed_cache

    write_seed_cache(Seed(source="none", stage="early"), target.path("/run/bootseed"))
    run = Agent(target.root).run()
    assert run.status.no_seed and run.status.state == "done"
    manifest = json.loads(target.path("/run/bootseed/seed.json").read_text())
    assert manifest["stage"] == "early" and manifest["source"] == "none"


def test_a_schema_key_claimed_twice_is_a_problem_not_a_failed_boot(target: TargetRoot) -> None:
    # A module file that claims another module's key: the config is not validated
    # (which fragment would win?), the status says why, and the modules still run.
    def handle(ctx: ModuleContext) -> None:
        pass

    thief = ModuleSpec("thief", Stage.CONFIG, Frequency.PER_INSTANCE,
                       {"properties": {"runcmd": {"type": "string"}}}, handle, order=500)
    plant_seed(target.root, "#cloud-config\nruncmd: ['echo r > /r']\n")
    run = Agent(target.root, extra=(thief,)).run()
    assert run.status.state == "done", run.status.errors
    conflicts = [p for p in run.status.problems if "claimed by both" in p.message]
    assert len(conflicts) == 1 and conflicts[0].level == "error"
    assert conflicts[0].message == ("cloud-config not validated: schema key 'runcmd' is claimed "
                                    "by both runcmd and thief: one module owns it, the other "
                                    "may still read it")
    assert target.path("/r").exists()


def test_modules_get_the_recorded_actions_from_the_runner(target: TargetRoot) -> None:
    from bootseed.contract.actions import Action, RootSwitch
    from bootseed.contract.seedcache import SideRecord, write_side_record

    seen: list[tuple[Action, ...]] = []
    spec = ModuleSpec("sees_actions", Stage.INIT, Frequency.PER_BOOT, {},
                      lambda ctx: seen.append(ctx.recorded_actions), order=500)
    plant_seed(target.root, USER_DATA)
    # (Not a volume action: the volumes module would try to mount it.)
    decision = RootSwitch("original root", "/dev/vda1")
    write_side_record(SideRecord(actions=[decision]), target.path("/run/bootseed"))
    run = Agent(target.root, extra=(spec,)).run()
    assert run.status.state == "done", run.status.errors
    assert seen == [(decision,)]
    # A record the contract cannot read is a problem in the status, not a crash.
    target.path("/run/bootseed/rootswitch.json").write_text('{"actions": [{"action": 1}]}')
    run = Agent(target.root, extra=(spec,)).run()
    assert run.status.state == "done" and seen[-1] == ()
    assert [p.where for p in run.status.problems] == ["recorded actions"]
    assert "rootswitch.json: actions[0]: 'action' is 1" in run.status.problems[0].message


def test_include_user_data_still_gets_network_config_before_ready(target: TargetRoot) -> None:
    plant_seed(target.root, "#include\nhttp://127.0.0.1:9/absent.yaml\n")
    wants = target.root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "systemd-networkd.service").symlink_to("/lib/systemd/system/systemd-networkd.service")
    net = target.root / "sys/class/net/ens3"
    net.mkdir(parents=True)
    (net / "address").write_text("52:54:00:00:00:03\n")
    run = Agent(target.root).run()
    ran = [(m.stage, m.status) for m in run.status.modules if m.name == "network_config"]
    # Before READY=1 in the local stage; the init modules after the network skip it.
    assert ran == [("local", "ok"), ("network", "skipped")]
    assert (target.root / "etc/systemd/network/10-bootseed-ens3.network").is_file()


def test_validation_waits_for_ready_and_keeps_its_place_in_the_status(
        target: TargetRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    # Validation is advisory: the local stage runs its modules before it, READY=1 goes
    # out before it, and its problems still sit before those the modules report.
    seen: list[bool] = []

    def handle(ctx: ModuleContext) -> None:
        seen.append((ctx.instance_dir / "schema-validated.json").exists())
        ctx.problems.append(Problem("item", "reported by the module", Level.WARNING))

    probe = ModuleSpec("probe", Stage.INIT, Frequency.PER_BOOT,
                       {"properties": {"probe": {"type": "object"}}}, handle, order=500)
    plant_seed(target.root, "#cloud-config\nno_such_key: [vim]\nprobe: {}\n")
    sock_path = target.root.parent / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(sock_path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
        run = Agent(target.root, extra=(probe,)).run(notify=True)
    assert seen == [False]
    assert module(run, "probe").stage == "local"
    wheres = [p.where for p in run.status.problems]
    unknown = next(i for i, w in enumerate(wheres) if "no_such_key" in w)
    reported = wheres.index("probe: item")
    assert unknown < reported
    assert run.log.index("sd_notify READY=1") < run.log.index("cloud-config validated")
    doc = json.loads(target.path("/run/bootseed/status.json").read_text())
    assert any("no_such_key" in p["where"] for p in doc["problems"])
    assert run.runner.state.instance_dir("i-0001").joinpath("schema-validated.json").exists()


def test_a_local_stage_run_alone_reports_its_validation(target: TargetRoot) -> None:
    plant_seed(target.root, "#cloud-config\nno_such_key: [vim]\n")
    local = Agent(target.root).run(stages=(RunStage.LOCAL,))
    assert any("no_such_key" in p.where for p in local.status.problems)
    doc = json.loads(target.path("/run/bootseed/status.json").read_text())
    assert any("no_such_key" in p["where"] for p in doc["problems"])
    final = Agent(target.root).run(stages=(RunStage.FINAL,))
    assert [p.where for p in final.status.problems].count(
        next(p.where for p in local.status.problems if "no_such_key" in p.where)) == 1


def _beside_module(name: str, gate: threading.Event, fail: bool = False) -> ModuleSpec:
    """A local-stage module whose slow part runs beside the boot until ``gate`` opens."""

    def slow() -> list[Problem]:
        assert gate.wait(30), "the test never opened the gate"
        if fail:
            raise OSError("disk full")
        return [Problem("slow", "made with a warning", Level.WARNING)]

    def handle(ctx: ModuleContext) -> None:
        ctx.target.path(f"/{name}-quick").write_text("x\n")
        ctx.run_beside("slow part", slow)

    return ModuleSpec(name, Stage.INIT, Frequency.PER_INSTANCE,
                      {"properties": {name: {"type": "object"}}}, handle, order=500)


def test_work_beside_the_boot_is_joined_before_the_status_is_final(
        target: TargetRoot) -> None:
    gate = threading.Event()
    plant_seed(target.root, "#cloud-config\nruncmd: ['echo r > /r']\n")
    sem = target.path("/var/lib/bootseed/instances/i-0001/sem/besides")
    seen: dict[str, bool] = {}

    def open_gate_after_runcmd() -> None:
        # The config stage (runcmd) runs while the slow part still waits: nothing after
        # the module waited for it, and the module is not marked done yet.
        deadline = time.monotonic() + 30
        while not target.path("/r").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen["runcmd_ran_first"] = target.path("/r").exists()
        seen["sem_before"] = sem.exists()
        gate.set()

    opener = threading.Thread(target=open_gate_after_runcmd)
    opener.start()
    run = Agent(target.root, extra=(_beside_module("besides", gate),)).run()
    opener.join()
    assert seen == {"runcmd_ran_first": True, "sem_before": False}
    assert module(run, "besides").status == "ok"
    assert sem.exists()
    assert [p.where for p in run.status.problems if "made with a warning" in p.message] == [
        "besides: slow"]
    assert "slow part finished" in run.log


def test_work_beside_the_boot_that_raises_leaves_the_module_due(target: TargetRoot) -> None:
    gate = threading.Event()
    gate.set()
    plant_seed(target.root, "#cloud-config\n")
    run = Agent(target.root, extra=(_beside_module("besides", gate, fail=True),)).run()
    assert [p.message for p in run.status.problems if p.where == "besides"] == [
        "slow part: OSError: disk full"]
    assert not target.path("/var/lib/bootseed/instances/i-0001/sem/besides").exists()
    failed = module(run, "besides")
    assert (failed.status, failed.error) == ("failed", "slow part: OSError: disk full")
    assert run.status.state == "error"
