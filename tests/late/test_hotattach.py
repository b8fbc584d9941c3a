"""Hot-attached volumes: the udev rule and unit as shipped, and ``bootseed volume attach``
on real ext4 images on loop devices.

The attach runs happen inside ``unshare -m`` (a private mount namespace) on a chroot-able
temp target, so nothing stays mounted on the host; the loop devices are detached by the
fixture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bootseed.early.blockdev import BlockDevice
from bootseed.late.hotattach import FINISHED, FstabEntry, fstab_entries_for, not_ready
from bootseed.late.target import TargetRoot

from tests.early.test_volumes_support import Lab, lab, needs_root

__all__ = ["lab"]

REPO = Path(__file__).resolve().parents[2]
RULE = REPO / "systemd" / "90-bootseed-volume.rules"
UNIT = REPO / "systemd" / "bootseed-volume@.service"


def _rule_lines() -> list[str]:
    return [line for line in RULE.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_udev_rule_wants_the_unit_for_filesystems_by_device_number() -> None:
    lines = _rule_lines()
    assert lines[0] == 'ACTION=="remove", GOTO="bootseed_volume_end"'
    assert 'SUBSYSTEM!="block", GOTO="bootseed_volume_end"' in lines
    assert 'KERNEL=="loop*|ram*|zram*", GOTO="bootseed_volume_end"' in lines
    assert ('ENV{ID_FS_USAGE}=="filesystem", '
            'ENV{SYSTEMD_WANTS}+="bootseed-volume@$major:$minor.service"') in lines
    assert lines[-1] == 'LABEL="bootseed_volume_end"'
    # After 60-persistent-storage.rules, which imports ID_FS_USAGE from blkid.
    assert RULE.name > "60-persistent-storage.rules"


@pytest.mark.skipif(shutil.which("udevadm") is None, reason="no udevadm")
def test_udev_rule_is_valid_for_udevadm(tmp_path: Path) -> None:
    proc = subprocess.run(["udevadm", "verify", str(RULE)], capture_output=True, text=True)
    if "Unknown command" in proc.stderr or "unknown" in proc.stderr.lower():
        pytest.skip("udevadm has no verify verb")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _unit() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        elif line.strip() and not line.startswith("#"):
            sections[current].append(line)
    return sections


def test_unit_runs_the_attach_command_once_per_device() -> None:
    unit = _unit()
    assert set(unit) == {"Unit", "Service"}  # no [Install]: only udev starts it
    # No device unit exists for /dev/block/MAJ:MIN: a BindsTo= on it failed the job.
    assert not [line for line in unit["Unit"] if "dev-block" in line]
    assert "After=bootseed.service bootseed-final.service" in unit["Unit"]
    assert "ConditionKernelCommandLine=!bootseed=off" in unit["Unit"]
    service = unit["Service"]
    # Inactive again once done: a volume attached again (same MAJ:MIN) is handled again.
    assert "Type=oneshot" in service and "RemainAfterExit=no" in service
    assert "ExecStart=/usr/bin/bootseed volume attach /dev/block/%i" in service
    install = (REPO / "debian" / "bootseed.install").read_text().splitlines()
    assert "systemd/bootseed-volume@.service lib/systemd/system/" in install
    assert "systemd/90-bootseed-volume.rules lib/udev/rules.d/" in install


def test_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    instance = tmp_path / "bootseed-volume@254:16.service"
    instance.write_text(UNIT.read_text().replace("/usr/bin/bootseed", "/bin/true"))
    proc = subprocess.run([analyze, "verify", "--man=no", str(instance)],
                          capture_output=True, text=True)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines()
                  if "bootseed-volume" in line]
    assert complaints == [], proc.stdout + proc.stderr


def test_nothing_before_the_first_boot_finished_or_with_bootseed_off(tmp_path: Path) -> None:
    target = TargetRoot(tmp_path)
    assert "has not finished its first boot" in not_ready(target, "ro quiet")
    target.write(FINISHED, "12.5 - done\n", mode=0o644)
    assert not_ready(target, "ro quiet") == ""
    assert not_ready(target, "ro bootseed=off") == "bootseed=off on the kernel command line"


def test_fstab_lines_naming_the_volume() -> None:
    volume = BlockDevice("/dev/vdc", label="Data", uuid="1234-abcd", fstype="ext4")
    fstab = ("UUID=r / ext4 defaults 0 1\n"
             "LABEL=data /srv/a ext4 defaults,nofail 0 2 # bootseed\n"
             "UUID=1234-ABCD /srv/b auto noatime,nofail 0 2 # bootseed\n"
             "/dev/vdc /srv/c ext4 defaults 0 2\n"  # not bootseed's: the admin's business
             "/dev/vdc none swap sw,nofail 0 0 # bootseed\n"
             "LABEL=other /srv/d ext4 defaults,nofail 0 2 # bootseed\n"
             "# LABEL=data /srv/e ext4 defaults 0 2 # bootseed\n")
    assert fstab_entries_for(fstab, volume) == [
        FstabEntry("LABEL=data", "/srv/a", "ext4", "defaults,nofail"),
        FstabEntry("UUID=1234-ABCD", "/srv/b", "auto", "noatime,nofail")]


# Runs inside the namespace: a chroot-able target, then `bootseed volume attach` per step.
RUN = r'''
import json, sys
from pathlib import Path
from bootseed.early.blockdev import mount_at, mount_table
from bootseed.late.cli import main
from bootseed.late.hotattach import FINISHED
from testsupport.chroot import make_shell_root

spec = json.loads(sys.argv[1])
root = Path(spec["root"])
target = make_shell_root(root)
for path, text in spec["files"].items():
    target.write(path, text, mode=0o644)
cmdline = root.parent / "cmdline"
out = []
for device, line in spec["steps"]:
    cmdline.write_text(line)
    status = main(["volume", "attach", device, "--root", str(root), "--cmdline", str(cmdline)])
    out.append(status)
def read(rel):
    p = root / rel
    return p.read_text() if p.exists() else None
print(json.dumps({
    "status": out,
    "mounted": {e.mountpoint[len(str(root)):]: e.source for e in mount_table()
                if e.mountpoint.startswith(str(root) + "/")},
    "fstab": read("etc/fstab"),
    "marker": read("exec-marker"),
    "records": [json.loads(l) for l in (read("var/log/bootseed/attach.log") or "").splitlines()],
}))
'''

FINISHED_FILES = {FINISHED: "12.5 - done\n", "/etc/fstab": "UUID=r / ext4 defaults 0 1\n"}


def _attach(lab: Lab, steps: list[tuple[str, str]],
            files: dict[str, str] | None = None) -> dict[str, Any]:
    root = lab.tmp / f"target-{len(list(lab.tmp.glob('target-*')))}"
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", RUN,
         json.dumps({"root": str(root), "steps": steps,
                     "files": FINISHED_FILES if files is None else files})],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    result["stdout"] = proc.stdout
    return result


def _volumes(lab: Lab) -> tuple[str, str, str]:
    mnt = lab.ext4("hotmnt", "HOTMNT", {
        "bootseed-volume.yaml": "action: mount\nmountpoint: /mnt/hot\n", "hello": "hi\n"})
    exe = lab.ext4("hotexec", "HOTEXEC", {
        "bootseed-volume.yaml": "action: exec\nrun: mark.sh\n",
        "mark.sh": "#!/bin/sh\necho ran >> /exec-marker\n"})
    plain = lab.ext4("hotplain", "HOTPLAIN", {"plain.txt": "plain\n"})
    return mnt, exe, plain


@pytest.mark.root
@needs_root
def test_attach_gives_each_volume_its_treatment_once(lab: Lab) -> None:
    mnt, exe, plain = _volumes(lab)
    files = {**FINISHED_FILES, "/etc/fstab": "UUID=r / ext4 defaults 0 1\n"
             "LABEL=HOTPLAIN /mnt/plain ext4 defaults,nofail 0 2 # bootseed\n"}
    steps = [(dev, "ro") for dev in (mnt, exe, plain)] * 2  # udev firing twice
    out = _attach(lab, steps, files)
    assert out["status"] == [0] * 6, out["stdout"]
    assert out["mounted"] == {"/mnt/hot": mnt, "/mnt/plain": plain}
    assert out["marker"] == "ran\n"
    assert "/mnt/hot ext4 defaults,nofail 0 2 # bootseed volume" in out["fstab"]
    first, second = out["records"][:3], out["records"][3:]
    assert [r["done"] for r in first] == [["volume-mount on /mnt/hot"], ["volume-exec mark.sh"],
                                          ["mounts entry LABEL=HOTPLAIN on /mnt/plain"]]
    assert [r["done"] for r in second] == [[], [], []]
    assert second[0]["skipped"].startswith("mounted already on ")
    assert second[1]["problems"] == [{"where": "volume-exec", "level": "note",
                                      "message": "mark.sh ran on this volume before; "
                                                 "not run again"}]
    assert second[2]["skipped"].startswith("mounted already on ")


@pytest.mark.root
@needs_root
def test_attach_keeps_the_safety_rules(lab: Lab) -> None:
    mnt, exe, plain = _volumes(lab)
    # Before the first boot finished: nothing at all, not even a mount.
    early = _attach(lab, [(mnt, "ro"), (exe, "ro")], {"/etc/fstab": ""})
    assert early["status"] == [0, 0] and early["mounted"] == {} and early["marker"] is None
    assert all("has not finished its first boot" in r["skipped"] for r in early["records"])
    # bootseed.volumes=off: the volume file is not read; bootseed=off: nothing.
    off = _attach(lab, [(mnt, "ro bootseed.volumes=off"), (exe, "ro bootseed=off")])
    assert off["mounted"] == {} and off["marker"] is None
    assert "volume consumption is off" in off["records"][0]["problems"][0]["message"]
    assert off["records"][1]["skipped"] == "bootseed=off on the kernel command line"
    # The image allows mount actions only: the exec volume is refused (an error).
    config = {**FINISHED_FILES, "/etc/bootseed/bootseed.cfg": "volumes:\n  actions: [mount]\n"}
    limited = _attach(lab, [(exe, "ro"), (mnt, "ro")], config)
    assert limited["status"] == [1, 0] and limited["marker"] is None
    assert "action exec is turned off" in limited["records"][0]["problems"][0]["message"]
    assert limited["mounted"] == {"/mnt/hot": mnt}
    # A bad volume file is reported, nothing is done with it.
    bad = lab.ext4("bad", "BAD", {"bootseed-volume.yaml": "action: format\n"})
    refused = _attach(lab, [(bad, "ro"), (plain, "ro")])
    assert refused["status"] == [1, 0] and refused["mounted"] == {}
    assert "action: 'format'" in refused["records"][0]["problems"][0]["message"]
    assert refused["records"][1]["skipped"] == ("no bootseed-volume.yaml and no mounts entry "
                                                "names it")
