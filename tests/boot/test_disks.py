"""End-to-end: ephemeral disks in a RAID0, a swap file, ``disk_setup``/``fs_setup`` on a
third disk, what survives a reboot, and a boot with one ephemeral disk gone.

Three blank disks (all zeros, as a cloud's fresh ephemeral disks are): ``vdb`` and
``vdd`` are ``ephemeral0``/``ephemeral1`` of the seed's block-device-mapping (``sdb``,
``sdd``: the guest has them as ``vd*``), ``vdc`` is a data disk named through
``device_aliases``. One lab run boots the instance and reboots it once; a second run
boots the same instance (its root overlay and disks) with ``ephemeral1`` removed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult, ExtraDisk
from bootseed.image_builder.serialreport import GuestReport

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
RAID_MOUNT = "/mnt/data"
LOGS_MOUNT = "/srv/logs"
RAID_FILE = f"{RAID_MOUNT}/hello.txt"
LOGS_FILE = f"{LOGS_MOUNT}/hello.txt"
LSBLK = "/run/disktest/lsblk.json"
FILES = ["/proc/mounts", "/proc/swaps", "/proc/mdstat", "/etc/fstab",
         "/etc/mdadm/mdadm.conf", RAID_FILE, LOGS_FILE, LSBLK]
PER_BOOT = """#!/bin/sh
mkdir -p /run/disktest
lsblk -J -o NAME,FSTYPE,LABEL,UUID,MOUNTPOINT > /run/disktest/lsblk.json 2>&1
"""
CONFIG: dict[str, Any] = {
    "device_aliases": {"logs_disk": "/dev/vdc"},
    "disk_setup": {"logs_disk": {"table_type": "gpt", "layout": True}},
    "fs_setup": [{"device": "logs_disk", "partition": "auto", "filesystem": "ext4",
                  "label": "logs"}],
    "bootseed_raid": [{"name": "data", "level": 0, "devices": "ephemeral",
                       "filesystem": "ext4", "label": "raiddata", "mount": RAID_MOUNT}],
    # ephemeral0 is a RAID member here, not the default /mnt.
    "mounts": [["ephemeral0", None], ["LABEL=logs", LOGS_MOUNT]],
    "swap": {"filename": "/swapfile", "size": "64M"},
    "write_files": [{"path": "/var/lib/bootseed/scripts/per-boot/10-disktest.sh",
                     "permissions": "0755", "content": PER_BOOT}],
    "runcmd": [f"echo on the raid > {RAID_FILE}", f"echo on the logs disk > {LOGS_FILE}",
               "sync"],
}
META = {"instance-id": "iid-disks-0001", "local-hostname": "disks",
        "block-device-mapping": {"ami": "sda", "root": "/dev/sda1",
                                 "ephemeral0": "sdb", "ephemeral1": "sdd"}}


def _seed(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "meta-data").write_text(yaml.safe_dump(META))
    (seed / "user-data").write_text("#cloud-config\n" + yaml.safe_dump(CONFIG))
    return seed


def _text(report: GuestReport, path: str) -> str:
    data = report.file_bytes(path)
    return data.decode(errors="replace") if data is not None else ""


def _devices(report: GuestReport) -> dict[str, dict[str, Any]]:
    """lsblk's devices by name, children flattened."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found.setdefault(str(item.get("name")), item)
            walk(item.get("children") or [])

    walk(json.loads(_text(report, LSBLK) or "{}").get("blockdevices") or [])
    return found


def _mounted(report: GuestReport, point: str) -> str | None:
    for line in _text(report, "/proc/mounts").splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[1] == point:
            return fields[0]
    return None


def _uuid_at(report: GuestReport, point: str) -> str | None:
    return next((str(d.get("uuid")) for d in _devices(report).values()
                 if d.get("mountpoint") == point), None)


def _why(result: BootResult) -> str:
    tail = result.console_text()[-4000:]
    return f"{result.summary()}\n--- console tail ---\n{tail}"


def test_raid_swap_fs_setup_survive_reboot_and_a_missing_disk(lab: BootLab,
                                                              tmp_path: Path) -> None:
    seed = _seed(tmp_path)
    disks = [ExtraDisk("eph0", "256M", blank=True), ExtraDisk("logs", "128M", blank=True),
             ExtraDisk("eph1", "256M", blank=True)]
    started = time.monotonic()
    first = lab.boot(BootOptions(nocloud_dir=seed, disks=disks, report_files=FILES,
                                 reboots=1, timeout=TIMEOUT))
    assert len(first.reports) == 2, _why(first)
    made, again = first.reports
    for report in (made, again):
        assert report.configured, (report.problems, report.module_errors, _why(first))

    # First boot: RAID0 over both ephemeral disks, mounted; the logs disk partitioned,
    # formatted and mounted by label; the swap file on.
    assert "raid0" in _text(made, "/proc/mdstat"), _text(made, "/proc/mdstat")
    assert "vdb" in _text(made, "/proc/mdstat") and "vdd" in _text(made, "/proc/mdstat")
    assert (_mounted(made, RAID_MOUNT) or "").startswith("/dev/md"), _text(made, "/proc/mounts")
    assert _mounted(made, LOGS_MOUNT) == "/dev/vdc1", _text(made, "/proc/mounts")
    assert "/swapfile" in _text(made, "/proc/swaps")
    fstab = _text(made, "/etc/fstab")
    raid_line = next(line for line in fstab.splitlines() if f" {RAID_MOUNT} " in line)
    assert raid_line.endswith("# bootseed raid") and "nofail" in raid_line, fstab
    assert "ARRAY /dev/md/data " in _text(made, "/etc/mdadm/mdadm.conf")
    devices = _devices(made)
    assert devices["vdc1"]["label"] == "logs" and devices["vdc1"]["fstype"] == "ext4"
    assert _text(made, RAID_FILE) == "on the raid\n"
    assert _text(made, LOGS_FILE) == "on the logs disk\n"
    raid_uuid, logs_uuid = _uuid_at(made, RAID_MOUNT), _uuid_at(made, LOGS_MOUNT)
    assert raid_uuid and logs_uuid, devices

    # Reboot of the same instance: assembled, not re-created; nothing reformatted.
    assert (_mounted(again, RAID_MOUNT) or "").startswith("/dev/md"), \
        _text(again, "/proc/mounts")
    assert _text(again, RAID_FILE) == "on the raid\n"
    assert _text(again, LOGS_FILE) == "on the logs disk\n"
    assert _uuid_at(again, RAID_MOUNT) == raid_uuid
    assert _uuid_at(again, LOGS_MOUNT) == logs_uuid
    assert "/swapfile" in _text(again, "/proc/swaps")

    # The same instance once more, ephemeral1 gone: the boot completes, the logs disk is
    # still mounted, the array is neither assembled nor re-created and the status
    # names the missing disk.
    gone = lab.boot(BootOptions(nocloud_dir=seed, disks=disks[:2], report_files=FILES,
                                resume_from=first.workdir, timeout=TIMEOUT))
    last = gone.report
    assert last is not None, _why(gone)
    assert last.raw.get("multi_user_reached") is not None, _why(gone)
    assert last.state in ("done", "degraded"), (last.state, _why(gone))
    assert _mounted(last, RAID_MOUNT) is None
    assert _text(last, LOGS_FILE) == "on the logs disk\n"
    assert _uuid_at(last, LOGS_MOUNT) == logs_uuid
    assert any(p.get("where") == "bootseed_raid: data" and p.get("level") == "error"
               and "ephemeral1 (sdd) missing" in str(p.get("message"))
               for p in last.problems), last.problems
    assert raid_line in _text(last, "/etc/fstab")  # kept, with nofail
    print(f"disk boots took {time.monotonic() - started:.0f}s "
          f"({first.seconds:.0f}s with the reboot, {gone.seconds:.0f}s)")
