"""cloud-init 22.4's files, written by a real run of the late agent in a temp root."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from bootseed.late.cloudinit_files import STAGE_NAMES, status_document
from bootseed.late.stages import RunStage
from bootseed.late.status import ModuleResult, RunStatus, StageTiming
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import make_target

USER_DATA = """#cloud-config
password: hunter2-planted
chpasswd: {expire: false}
runcmd:
  - echo ran
"""


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    return make_shell_root(make_target(tmp_path / "root").root)


def _json(target: TargetRoot, inside: str) -> dict:
    return json.loads(target.path(inside).read_text())


def test_a_finished_run_leaves_cloud_inits_files(target: TargetRoot) -> None:
    plant_seed(target.root, USER_DATA, metadata={"region": "lab-1",
                                                 "availability-zone": "lab-1a"})
    run = Agent(target.root).run()
    assert run.status.state in ("done", "error"), run.log

    status = _json(target, "/run/cloud-init/status.json")["v1"]
    assert status["datasource"] == "nocloud"
    assert status["stage"] is None  # the run is over: what tools poll for
    for name in ("init-local", "init", "modules-config", "modules-final"):
        assert set(status[name]) == {"start", "finished", "errors"}
        assert status[name]["start"] <= status[name]["finished"]

    result = _json(target, "/run/cloud-init/result.json")
    assert result == _json(target, "/run/bootseed/result.json")
    assert set(result["v1"]) >= {"datasource", "errors"}

    link = target.path("/var/lib/cloud/instance")
    assert os.readlink(link) == "instances/i-0001"
    assert (link / "boot-finished").read_text().endswith(f"v. {run.status.version}\n")
    assert target.path("/var/lib/cloud/data/instance-id").read_text() == "i-0001\n"
    # What scripts printed, under cloud-init's name too.
    output = target.path("/var/log/cloud-init-output.log")
    assert os.readlink(output) == "user_data.log"
    assert output.read_text() == target.path("/var/log/user_data.log").read_text()

    public = target.path("/run/cloud-init/instance-data.json")
    sensitive = target.path("/run/cloud-init/instance-data-sensitive.json")
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE(sensitive.stat().st_mode) == 0o600
    assert public.read_text() == target.path("/run/bootseed/instance-data.json").read_text()
    full, shown = json.loads(sensitive.read_text()), json.loads(public.read_text())
    assert {"v1", "ds", "merged_cfg"} <= set(full)
    v1 = shown["v1"]
    assert v1["instance_id"] == "i-0001" and v1["local_hostname"] == "seeded"
    assert v1["region"] == "lab-1" and v1["availability_zone"] == "lab-1a"
    assert v1["cloud_name"] == "nocloud" and v1["platform"] == "nocloud"
    assert full["merged_cfg"]["password"] == "hunter2-planted"
    assert "hunter2-planted" not in public.read_text()
    assert "hunter2-planted" not in target.path("/run/cloud-init/status.json").read_text()


def test_stage_names_the_running_stage_and_errors_land_in_their_stage() -> None:
    status = RunStatus(state="running", stage=str(RunStage.CONFIG), source="ec2")
    status.stages = {"local": StageTiming(1.0, 2.0, 1.0), "network": StageTiming(3.0, 4.0, 1.0),
                     "config": StageTiming(5.0)}
    status.modules = [ModuleResult("runcmd", "network", "once-per-instance", "failed", 0.1,
                                   error="boom")]
    v1 = status_document(status)["v1"]
    assert v1["stage"] == "modules-config"
    assert v1["init"]["errors"] == ["runcmd: boom"]
    assert v1["modules-config"] == {"start": 5.0, "finished": None, "errors": []}
    assert v1["modules-final"] == {"start": None, "finished": None, "errors": []}
    status.state, status.errors = "error", ["seed cache unusable"]
    v1 = status_document(status)["v1"]
    assert v1["stage"] is None
    assert v1["modules-config"]["errors"] == ["seed cache unusable"]
    assert set(STAGE_NAMES.values()) <= set(v1)
    # cloud-init lists the stage no boot runs, never started.
    assert v1["modules-init"] == {"start": None, "finished": None, "errors": []}
    assert set(v1) == {"datasource", "stage", "init-local", "init", "modules-init",
                       "modules-config", "modules-final"}


def test_a_new_instance_moves_the_link(target: TargetRoot) -> None:
    plant_seed(target.root, USER_DATA)
    Agent(target.root).run()
    plant_seed(target.root, USER_DATA, instance_id="i-0002")
    Agent(target.root).run()
    assert os.readlink(target.path("/var/lib/cloud/instance")) == "instances/i-0002"
    assert target.path("/var/lib/cloud/data/instance-id").read_text() == "i-0002\n"
    assert target.path("/var/lib/cloud/instances/i-0001/boot-finished").exists()


def test_a_symlinked_cloud_dir_is_not_followed_out_of_the_target(
        target: TargetRoot, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target.path("/var/lib").mkdir(parents=True, exist_ok=True)
    os.symlink(outside, target.path("/var/lib/cloud"))
    plant_seed(target.root, USER_DATA)
    run = Agent(target.root).run()
    assert not list(outside.iterdir())
    assert run.status.state != "running"


def test_a_real_cloud_init_output_log_is_left_alone(target: TargetRoot) -> None:
    from bootseed.late.cloudinit_files import link_output_log

    real = target.path("/var/log/cloud-init-output.log")
    real.parent.mkdir(parents=True, exist_ok=True)
    real.write_text("from cloud-init, before bootseed\n")
    link_output_log(target)
    assert not real.is_symlink() and real.read_text() == "from cloud-init, before bootseed\n"
    real.unlink()
    real.symlink_to("/etc/shadow")  # a stale or hostile link is replaced, never followed
    link_output_log(target)
    assert os.readlink(real) == "user_data.log"
