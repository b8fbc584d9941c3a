"""``volumes`` late module: fstab lines, real mounts and volume scripts from loop devices.

The mounting tests run the module inside ``unshare -m`` (a private mount namespace) on a
chroot-able temp target, so nothing stays mounted on the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.actions import EarlyStage, VolumeExec, VolumeMount, VolumeRef
from bootseed.contract.seedcache import Seed, SideRecord, write_seed_cache, write_side_record
from bootseed.late.modules.volumes import MODULE, volume_actions
from bootseed.late.runner import Runner, RunOptions
from bootseed.late.target import TargetRoot
from bootseed.late.volumeactions import fstab_line, update_fstab

from tests.early.test_volumes_support import Lab, lab, needs_root
from testsupport.targetfs import make_ctx

__all__ = ["lab"]

REPO = Path(__file__).resolve().parents[3]
MOUNT_RECORD = {"action": "volume-mount", "device": "/dev/vdb", "uuid": "u-1",
                "fstype": "ext4", "label": "data", "mountpoint": "/srv/data",
                "options": "noatime"}
MOUNT = VolumeMount(VolumeRef("/dev/vdb", "ext4", "data", "u-1"), "/srv/data", "noatime")


def test_fstab_line_adds_nofail_and_is_idempotent() -> None:
    assert fstab_line(MOUNT) == "UUID=u-1 /srv/data ext4 noatime,nofail 0 2 # bootseed volume\n"
    base = "# static\nUUID=r / ext4 defaults 0 1"
    once = update_fstab(base, MOUNT)
    assert once == f"# static\nUUID=r / ext4 defaults 0 1\n{fstab_line(MOUNT)}"
    assert update_fstab(once, MOUNT) == once
    moved = update_fstab(once, replace(MOUNT, mountpoint="/data"))
    assert moved.count("UUID=u-1") == 1 and " /data ext4" in moved


def test_fstab_entry_bootseed_did_not_write_wins() -> None:
    with pytest.raises(ValueError, match="already mounts something on /srv/data"):
        update_fstab("LABEL=x /srv/data/ xfs defaults 0 0\n", MOUNT)


def test_actions_come_from_seed_json_and_the_side_record(tmp_path: Path) -> None:
    # The runner reads both records (through the contract) into the module's context.
    target = TargetRoot(tmp_path / "target")
    target.root.mkdir()
    seed_dir = target.path("/run/bootseed")
    runner = Runner(RunOptions(root=target.root))
    assert runner.recorded_actions == ()
    exec_action = VolumeExec(VolumeRef("/dev/vdc", uuid="u-2"), "go.sh")
    write_seed_cache(Seed(source="none", actions=[EarlyStage(), MOUNT]), seed_dir)
    write_side_record(SideRecord(actions=[MOUNT, exec_action]), seed_dir)
    runner = Runner(RunOptions(root=target.root))
    assert runner.recorded_actions == (EarlyStage(), MOUNT, exec_action)
    assert volume_actions(make_ctx(target, {}, recorded_actions=runner.recorded_actions)) == [
        MOUNT, exec_action]
    (seed_dir / "seed.json").write_text("{")
    runner = Runner(RunOptions(root=target.root))
    assert runner.recorded_actions == ()
    [problem] = runner.status.problems
    assert problem.where == "recorded actions" and "seed.json: not JSON" in problem.message


def test_old_records_written_as_plain_dicts_still_read(tmp_path: Path) -> None:
    target = TargetRoot(tmp_path)
    seed_dir = target.path("/run/bootseed")
    seed_dir.mkdir(parents=True)
    (seed_dir / "rootswitch.json").write_text(json.dumps(
        {"format": 1, "actions": [MOUNT_RECORD], "problems": [], "timings": []}))
    assert Runner(RunOptions(root=target.root)).recorded_actions == (MOUNT,)


def test_schema_accepts_the_image_switches() -> None:
    import jsonschema

    schema = {"type": "object", **MODULE.schema}
    jsonschema.validate({"volumes": {"consume": False, "actions": ["mount"], "timeout": 5},
                         "overlay": "LABEL=rw,mkfs"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"volumes": {"actions": ["format"]}}, schema)


# Runs inside the namespace: a chroot-able target, the recorded actions, the module twice.
RUN = r'''
import json, sys
from pathlib import Path
from bootseed.contract.actions import action_from_dict
from bootseed.early.blockdev import mount_at, mount_table
from bootseed.late.modules.volumes import handle
from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx

spec = json.loads(sys.argv[1])
root = Path(spec["root"])
target = make_shell_root(root)
(root / "etc").mkdir(exist_ok=True)
(root / "etc/fstab").write_text("UUID=r / ext4 defaults 0 1\n")
recorded = tuple(action_from_dict(a) for a in spec["actions"])
errors = []
for _ in range(2):
    try:
        handle(make_ctx(target, {}, name="volumes", recorded_actions=recorded))
    except RuntimeError as exc:
        errors.append(str(exc))
entry = mount_at(str(root / "srv/data"))
def read(rel):
    p = root / rel
    return p.read_text() if p.exists() else None
print(json.dumps({
    "errors": errors,
    "mounted": entry.source if entry else None,
    "data": read("srv/data/hello"),
    "fstab": read("etc/fstab"),
    "count": read("ran-count"),
    "log": read("var/log/bootseed/volumes.log"),
    "left": [e.mountpoint for e in mount_table() if e.mountpoint.startswith(str(root / "run"))],
}))
'''


def _run_module(tmp: Path, actions: list[dict[str, Any]]) -> dict[str, Any]:
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", RUN,
         json.dumps({"root": str(tmp / "target"), "actions": actions})],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _uuid(device: str) -> str:
    # -c /dev/null: the blkid cache keeps a reused loop device's old UUID.
    return subprocess.run(["blkid", "-c", "/dev/null", "-s", "UUID", "-o", "value", device],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.root
@needs_root
def test_mount_action_adds_fstab_and_mounts(lab: Lab) -> None:
    dev = lab.ext4("data", "data", {"hello": "from the volume\n"})
    action = {**MOUNT_RECORD, "device": dev, "uuid": _uuid(dev)}
    out = _run_module(lab.tmp, [action])
    assert out["errors"] == []
    assert out["mounted"] == dev and out["data"] == "from the volume\n"
    assert out["fstab"] == ("UUID=r / ext4 defaults 0 1\n"
                            f"UUID={action['uuid']} /srv/data ext4 noatime,nofail 0 2 "
                            "# bootseed volume\n")


@pytest.mark.root
@needs_root
def test_exec_action_runs_once_and_logs(lab: Lab) -> None:
    script = ('#!/bin/sh\necho "ran from $BOOTSEED_VOLUME_DIR"\necho x >> /ran-count\n'
              'echo oops >&2\n')
    dev = lab.ext4("tool", None, {"bin/setup.sh": script})
    uuid = _uuid(dev)
    before = lab.digest("tool")
    out = _run_module(lab.tmp, [{"action": "volume-exec", "device": dev, "uuid": uuid,
                                 "fstype": "ext4", "label": None, "run": "bin/setup.sh"}])
    assert out["errors"] == []
    assert out["count"] == "x\n"  # two module runs, one script run
    assert out["log"] == (f"--- bootseed volume UUID={uuid} bin/setup.sh (exit 0)\n"
                          f"ran from /run/bootseed/volume-exec/{uuid}\noops\n")
    assert out["left"] == []
    assert lab.digest("tool") == before


@pytest.mark.root
@needs_root
def test_failing_script_and_missing_volume_are_errors(lab: Lab) -> None:
    dev = lab.ext4("tool", None, {"fail.sh": "echo failing\nexit 3\n"})
    uuid = _uuid(dev)
    out = _run_module(lab.tmp, [
        {"action": "volume-exec", "device": dev, "uuid": uuid, "fstype": "ext4",
         "run": "fail.sh"},
        {**MOUNT_RECORD, "device": "/dev/nonexistent", "uuid": "0000-gone"}])
    assert len(out["errors"]) == 2
    assert "fail.sh exited with status 3" in out["errors"][0]
    assert "no volume with UUID=0000-gone attached now" in out["errors"][0]
    assert out["log"].count("--- bootseed volume") == 2  # not marked done: tried again
    assert out["mounted"] is None
