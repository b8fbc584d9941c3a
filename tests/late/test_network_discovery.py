"""Late network discovery: the network stage searches the network sources the local
stage left to it (EC2, OpenStack, a NoCloud URL), against real servers on 127.0.0.1;
off-cloud nothing is probed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bootseed.contract.problems import Level, Problem
from bootseed.contract.seedcache import Seed, write_seed_cache
from bootseed.image_builder.mocks.imds import MockImds
from bootseed.image_builder.mocks.openstack import MockOpenStack
from bootseed.image_builder.mocks.static import StaticServer
from bootseed.late.stages import RunStage
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.runenv import Agent
from testsupport.targetfs import make_target

UUID = "5d7d1a52-3d8e-4c1e-8f7b-8f2c1a9b7e10"
USER_DATA = b"""#cloud-config
write_files:
  - path: /etc/late-found
    content: "from the network stage\\n"
runcmd:
  - echo ran > /late-runcmd
"""


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    return make_shell_root(make_target(tmp_path / "root").root)


def plant_dmi(target: TargetRoot, **fields: str) -> None:
    dmi = target.path("/sys/class/dmi/id")
    dmi.mkdir(parents=True, exist_ok=True)
    for name, value in fields.items():
        (dmi / name).write_text(value + "\n")


def plant_cmdline(target: TargetRoot, text: str) -> None:
    target.path("/proc").mkdir(exist_ok=True)
    target.path("/proc/cmdline").write_text(text + "\n")


def early_found_nothing(target: TargetRoot) -> Problem:
    problem = Problem("network", "cannot raise nic9: no such device", Level.ERROR)
    write_seed_cache(Seed(source="none", stage="early", problems=[problem]),
                     target.path("/run/bootseed"))
    return problem


def manifest(target: TargetRoot) -> dict:
    return json.loads(target.path("/run/bootseed/seed.json").read_text())


def test_off_cloud_no_network_source_is_probed(target: TargetRoot) -> None:
    plant_dmi(target, sys_vendor="QEMU", product_name="Standard PC (i440FX + PIIX, 1996)")
    early_found_nothing(target)
    with MockImds({"instance-id": "i-1"}) as imds, \
            MockOpenStack({"meta_data.json": json.dumps({"uuid": UUID}).encode()}) as nova:
        run = Agent(target.root).run(ec2_endpoints=(imds.url,),
                                     openstack_endpoints=(nova.url,))
        assert imds.requests == [] and nova.requests == []
    assert run.status.no_seed and run.status.state == "done"
    assert "network seed search" not in run.log
    assert manifest(target)["stage"] == "early"


def test_openstack_by_dmi_after_the_early_stage_found_nothing(target: TargetRoot) -> None:
    plant_dmi(target, product_name="OpenStack Nova", sys_vendor="OpenStack Foundation")
    early_problem = early_found_nothing(target)
    files = {"meta_data.json": json.dumps({"uuid": UUID, "hostname": "nova-1"}).encode(),
             "user_data": USER_DATA}
    with MockOpenStack(files) as nova:
        run = Agent(target.root).run(openstack_endpoints=(nova.url,), ec2_endpoints=())
        fetched = [r.path for r in nova.requests]
    status = run.status
    assert status.state == "done" and not status.no_seed, (status.errors, run.log[-2000:])
    assert (status.source, status.instance_id) == ("openstack", UUID)
    # Configured by the network stage: user-data, init modules, then config and final.
    assert status.config_stage == "network"
    assert "/openstack/latest/user_data" in fetched
    assert target.path("/etc/late-found").read_text() == "from the network stage\n"
    assert target.path("/late-runcmd").read_text() == "ran\n"
    assert {m.stage for m in status.modules if m.status == "ok"} >= {"network", "config",
                                                                     "final"}
    cache = manifest(target)
    assert cache["stage"] == "network" and cache["source"] == "openstack"
    assert early_problem.where in [p["where"] for p in cache["problems"]]


def test_nocloud_url_without_an_early_stage_split_stages(target: TargetRoot) -> None:
    # The bootseed package alone: no cache; the local stage searches local sources
    # only and leaves the URL to the network stage, run here in its own process.
    seed_dir = target.path("/srv-seed")
    seed_dir.mkdir()
    (seed_dir / "meta-data").write_text("instance-id: iid-late-url\n")
    (seed_dir / "user-data").write_bytes(USER_DATA)
    with StaticServer(seed_dir) as server:
        plant_cmdline(target, f"ds=nocloud;s={server.url}/")
        local = Agent(target.root).run(stages=(RunStage.LOCAL,))
        assert server.requests == [] and not local.status.no_seed
        assert manifest(target)["stage"] == "late"
        network = Agent(target.root).run(stages=(RunStage.NETWORK,))
        assert server.requests[0].path == "/meta-data"
    assert network.status.instance_id == "iid-late-url"
    assert network.status.source == "nocloud"
    assert target.path("/etc/late-found").exists()
    assert manifest(target)["stage"] == "network"
    final = Agent(target.root).run(stages=(RunStage.FINAL,))
    assert final.status.state == "done", final.status.errors
    assert target.path("/late-runcmd").read_text() == "ran\n"


def test_a_network_search_that_finds_nothing_is_done_once(target: TargetRoot) -> None:
    plant_dmi(target, sys_vendor="Amazon EC2")
    early_found_nothing(target)
    with MockImds({"instance-id": "i-1"}) as imds:
        closed = imds.url
    run = Agent(target.root).run(stages=(RunStage.LOCAL, RunStage.NETWORK),
                                 ec2_endpoints=(closed,))
    assert run.status.no_seed
    assert manifest(target)["stage"] == "network"
    assert any(p.where.startswith("seed: " + closed) for p in run.status.problems)
    # The final stage in its own process does not search again.
    final = Agent(target.root).run(stages=(RunStage.FINAL,), ec2_endpoints=(closed,))
    assert final.status.no_seed and "network seed search" not in final.log
