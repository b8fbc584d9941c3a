"""End-to-end, one boot: the root grows to an enlarged disk, and volumes hot-plugged
through QMP after the boot get the boot-time treatment.

The lab image boots from a disk made 2 GiB larger with ``qemu-img resize`` (as a cloud
gives an image a bigger disk): ``growpart`` and ``resize_rootfs`` grow partition and
filesystem, seen in the guest's ``lsblk -b -J`` and ``df -B1 /`` and in bootseed's status.

Once bootseed's status is final, the lab's report unit prints its waiting marker; the
test's console hook then hot-plugs three ext4 volumes made here with ``mkfs.ext4 -d``
(QMP ``blockdev-add`` + ``device_add`` of a virtio-blk-pci): one whose
``bootseed-volume.yaml`` asks for a mount at /mnt/hot, one whose file asks for an exec
that writes a marker, and one without a file that the seed's ``mounts`` names by label.
udev starts ``bootseed-volume@MAJ:MIN.service`` for each; the report waits (bounded)
for the three results and shows them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bootseed.image_builder.lab import GUEST_WAITING, BootLab, BootOptions, ConsoleHook
from bootseed.image_builder.manifest import read_manifest
from bootseed.image_builder.qmp import QmpClient, hot_add_disk

pytestmark = pytest.mark.boot

GiB = 1024 ** 3
GROWN_BY = 2 * GiB
HOT_FILE = "/mnt/hot/hello"
MARKER = "/var/lib/hot-exec-marker"
PLAIN_FILE = "/mnt/plain/plain.txt"
ATTACH_LOG = "/var/log/bootseed/attach.log"
FILES = ["/proc/mounts", "/etc/fstab", HOT_FILE, MARKER, PLAIN_FILE, ATTACH_LOG,
         "/var/log/bootseed/volumes.log"]


def _volume(dest: Path, label: str, files: dict[str, str]) -> Path:
    tree = dest.with_suffix(".tree")
    for name, content in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if name.endswith(".sh"):
            path.chmod(0o755)
    tree.mkdir(exist_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(tree), str(dest), "16M"],
                   check=True, capture_output=True)
    return dest


def _seed(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "meta-data").write_text("instance-id: i-hotattach-1\n")
    (seed / "user-data").write_text(
        "#cloud-config\n"
        "mounts:\n"
        "  - [LABEL=HOTPLAIN, /mnt/plain, ext4, \"defaults,nofail\"]\n")
    return seed


def _lsblk(devices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for device in devices:
        found[device["name"]] = device
        found.update(_lsblk(device.get("children") or []))
    return found


def test_grown_root_and_hot_attached_volumes(lab: BootLab, tmp_path: Path) -> None:
    volumes = {
        "hotmnt": _volume(tmp_path / "hotmnt.raw", "HOTMNT", {
            "bootseed-volume.yaml": "action: mount\nmountpoint: /mnt/hot\n",
            "hello": "hello from a hot volume\n"}),
        "hotexec": _volume(tmp_path / "hotexec.raw", "HOTEXEC", {
            "bootseed-volume.yaml": "action: exec\nrun: mark.sh\n",
            "mark.sh": f"#!/bin/sh\necho \"exec ran from $BOOTSEED_VOLUME_DIR\" >> {MARKER}\n"}),
        "hotplain": _volume(tmp_path / "hotplain.raw", "HOTPLAIN", {"plain.txt": "plain\n"}),
    }

    def hot_plug(client: QmpClient) -> None:
        for name, image in volumes.items():
            hot_add_disk(client, image, name)

    result = lab.boot(BootOptions(
        nocloud_dir=_seed(tmp_path), grow_disk=f"+{GROWN_BY // GiB}G",
        console_hooks=[ConsoleHook(GUEST_WAITING, hot_plug)],
        wait_files=[HOT_FILE, MARKER, PLAIN_FILE], wait_timeout=120,
        report_files=FILES, timeout=480))
    report = result.report
    diagnose = f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"
    assert report is not None and result.ok, diagnose
    assert [h.error for h in result.hooks] == [""] and result.hooks[0].fired_at, diagnose

    # -- the root grew: partition and filesystem ------------------------------------
    manifest = read_manifest(lab.image)
    disks = report.raw["disks"]
    blocks = _lsblk(disks["lsblk"]["blockdevices"])
    root = disks["df_root"]
    root_part = blocks[Path(root["source"]).name]
    built_root = manifest.root_size
    assert root_part["size"] >= built_root + GROWN_BY - 64 * 1024 ** 2, (root_part, built_root)
    # df's size leaves out the filesystem's own metadata (~4 % for ext4 here): an ungrown
    # root shows less than its partition, the grown one most of the 2 GiB more.
    assert root["fstype"] == "ext4" and root["size"] > built_root + GROWN_BY * 0.8, root
    modules = {m["name"]: m for m in report.modules}
    assert modules["growpart"]["status"] == "ok" and modules["resizefs"]["status"] == "ok"
    problems = [f"{p['where']}: {p['message']}" for p in report.problems]
    assert any("growpart.devices: /: grown" in p for p in problems), problems

    # -- the hot-attached volumes ----------------------------------------------------
    waited = report.raw["waited"]
    assert waited["missing"] == [] and waited["jobs_pending"] == [], waited
    files = {path: report.file_bytes(path) for path in FILES}
    assert files[HOT_FILE] == b"hello from a hot volume\n"
    assert files[PLAIN_FILE] == b"plain\n"
    assert files[MARKER] is not None and files[MARKER].decode().splitlines() == [
        "exec ran from /run/bootseed/volume-exec/" + blocks_uuid(blocks, "HOTEXEC")]
    mounts = {line.split()[1]: line.split() for line in
              (files["/proc/mounts"] or b"").decode().splitlines()}
    assert mounts["/mnt/hot"][2] == "ext4" and mounts["/mnt/plain"][2] == "ext4", mounts
    fstab = (files["/etc/fstab"] or b"").decode()
    assert "/mnt/hot ext4 defaults,nofail 0 2 # bootseed volume" in fstab, fstab
    records = [json.loads(line) for line in (files[ATTACH_LOG] or b"").decode().splitlines()]
    assert sorted(d for r in records for d in r["done"]) == [
        "mounts entry LABEL=HOTPLAIN on /mnt/plain", "volume-exec mark.sh",
        "volume-mount on /mnt/hot"], records
    assert not [r for r in records if any(p["level"] == "error" for p in r["problems"])]
    assert not [u for u in report.raw.get("failed_units") or [] if "bootseed" in u]
    print(f"hot-plug fired at {result.hooks[0].fired_at}s; results seen after "
          f"{waited['seconds']}s; boot {result.seconds:.0f}s")


def blocks_uuid(blocks: dict[str, dict[str, Any]], label: str) -> str:
    [uuid] = [b["uuid"] for b in blocks.values() if b.get("label") == label]
    return str(uuid)
