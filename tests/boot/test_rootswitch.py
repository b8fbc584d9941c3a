"""End-to-end: rescue boot, root take-over, volume consumption and the overlay root in
real QEMU boots of the lab image, with real disks attached.

Disk contents are prepared on the host without mounting (``dd`` of the image's root
partition, ``tune2fs``, ``debugfs``, ``mkfs.ext4 -d``) and handed to the lab in place of
its blank extra disks. What happened is read from the guest's own report: files
(``/proc/mounts``, markers, ``seed.json``) and ``bootseed status``.

"The image's root is byte-for-byte unchanged" is checked on the boot's qcow2 overlay:
every guest write lands in its top layer, so no top-layer cluster inside the root
partition means no byte of it changed (the GRUB environment block is excluded: the lab
writes the kernel arguments there and GRUB itself counts boots in it, before Linux runs).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from bootseed.image_builder import overlay as lab_overlay
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult, ExtraDisk
from bootseed.image_builder.manifest import read_manifest, write_manifest

from .conftest import EXAMPLE_SEED

pytestmark = pytest.mark.boot

MARKER = "/bootseed-marker"
MOUNTS = "/proc/mounts"
SEED_JSON = "/run/bootseed/seed.json"
FILES = [MARKER, MOUNTS, SEED_JSON]


@pytest.fixture
def disks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """Prepared disk files by lab disk label; the lab's data-disk maker moves them in."""
    prepared: dict[str, Path] = {}
    original = lab_overlay.make_data_disk

    def make(path: Path, label: str, size: str) -> None:
        if label in prepared:
            os.replace(prepared.pop(label), path)
        else:
            original(path, label, size)

    monkeypatch.setattr(lab_overlay, "make_data_disk", make)
    return prepared


def _run(*cmd: str, ok: Callable[[int], bool] = lambda rc: rc == 0) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert ok(proc.returncode), f"{' '.join(cmd)}: {proc.stderr or proc.stdout}"


def _put_files(image: Path, files: dict[str, str], tmp: Path) -> None:
    for name, content in files.items():
        local = tmp / f"put-{name.replace('/', '_')}"
        local.write_text(content)
        _run("debugfs", "-w", "-R", f"write {local} {name.lstrip('/')}", str(image))


def root_copy(image: Path, dest: Path, label: str, files: dict[str, str]) -> Path:
    """The image's root filesystem, relabelled, with a new UUID and extra top-level files."""
    manifest = read_manifest(image)
    _run("dd", f"if={image}", f"of={dest}", "bs=4M", "iflag=skip_bytes,count_bytes",
         f"skip={manifest.root_offset}", f"count={manifest.root_size}", "conv=sparse",
         "status=none")
    _run("e2fsck", "-fy", str(dest), ok=lambda rc: rc in (0, 1))
    _run("tune2fs", "-L", label, "-U", "random", str(dest))
    _put_files(dest, files, dest.parent)
    return dest


def small_volume(dest: Path, label: str | None, files: dict[str, str],
                 size: str = "64M") -> Path:
    tree = dest.with_suffix(".tree")
    for name, content in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if name.endswith(".sh"):
            path.chmod(0o755)
    tree.mkdir(exist_ok=True)
    cmd = ["mkfs.ext4", "-q", "-F", "-d", str(tree)]
    if label:
        cmd += ["-L", label]
    _run(*cmd, str(dest), size)
    return dest


def _text(result: BootResult, path: str) -> str | None:
    report = result.report
    assert report is not None, _diagnose(result)
    data = report.file_bytes(path)
    return None if data is None else data.decode(errors="replace")


def _mounts(result: BootResult) -> dict[str, tuple[str, str, str]]:
    """Mount point -> (source, type, first option) from the guest's /proc/mounts."""
    found = {}
    for line in (_text(result, MOUNTS) or "").splitlines():
        source, point, fstype, options = line.split()[:4]
        found[point] = (source, fstype, options.split(",")[0])
    return found


def _seed(result: BootResult) -> dict[str, Any]:
    text = _text(result, SEED_JSON)
    assert text is not None, _diagnose(result)
    doc: dict[str, Any] = json.loads(text)
    return doc


def _actions(result: BootResult, name: str) -> list[dict[str, Any]]:
    return [a for a in _seed(result).get("actions", []) if a.get("action") == name]


def _problems(result: BootResult) -> list[str]:
    return [f"{p['where']}: {p['message']}" for p in _seed(result).get("problems", [])]


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-3000:]}"


def _root_partition_writes(lab: BootLab, result: BootResult) -> list[dict[str, Any]]:
    manifest = read_manifest(lab.image)
    out = subprocess.run(["qemu-img", "map", "--output=json", str(result.workdir /
                                                                    "disk.qcow2")],
                         capture_output=True, text=True, check=True).stdout
    start, end = manifest.root_offset, manifest.root_offset + manifest.root_size
    grubenv = (manifest.grubenv_offset // 65536 * 65536, manifest.grubenv_offset // 65536
               * 65536 + 65536)
    writes = []
    for entry in json.loads(out):
        if entry["depth"] != 0 or not entry["data"]:
            continue
        lo, hi = max(entry["start"], start), min(entry["start"] + entry["length"], end)
        if lo >= hi or (grubenv[0] <= lo and hi <= grubenv[1]):
            continue
        writes.append(entry)
    return writes


def test_rescue_volume_boots_and_keeps_the_original_at_media(lab: BootLab, tmp_path: Path,
                                                             disks: dict[str, Path]) -> None:
    disks["rescue"] = root_copy(lab.image, tmp_path / "rescue.raw", "RESCUE",
                                {MARKER: "rescue\n"})
    result = lab.boot(BootOptions(nocloud_dir=EXAMPLE_SEED, disks=[ExtraDisk("rescue", "11G")],
                                  report_files=[*FILES, "/media/original-root/etc/fstab"]))
    assert _text(result, MARKER) == "rescue\n", _diagnose(result)
    mounts = _mounts(result)
    assert mounts["/media/original-root"][1:] == ("ext4", "rw"), mounts
    assert mounts["/"][1] == "ext4" and mounts["/"][0] != mounts["/media/original-root"][0]
    assert (_text(result, "/media/original-root/etc/fstab") or "").startswith("LABEL=bootseed-root")
    [rescue] = _actions(result, "rescue")
    assert rescue["label"] == "RESCUE" and rescue["original_root"] == "/media/original-root"
    # The same seed reached the rescue system: its late agent configured the example user
    # with the same authorized keys.
    assert result.ok, _diagnose(result)
    (wanted,) = yaml.safe_load((EXAMPLE_SEED / "user-data").read_text())["users"]
    report = result.report
    user = report.user(wanted["name"]) if report is not None else None
    assert user is not None and user["authorized_keys"] == wanted["ssh_authorized_keys"]


def test_done_rescue_missing_takeover_and_tiny_overlay_boot_normally(
        lab: BootLab, tmp_path: Path, disks: dict[str, Path]) -> None:
    disks["rescue"] = root_copy(lab.image, tmp_path / "rescue.raw", "RESCUE",
                                {MARKER: "rescue\n", "DONE": ""})
    disks["tiny"] = small_volume(tmp_path / "tiny.raw", "tinyovl", {}, "8M")
    result = lab.boot(BootOptions(
        nocloud_dir=EXAMPLE_SEED, disks=[ExtraDisk("rescue", "11G"), ExtraDisk("tiny", "8M")],
        kernel_args=["bootseed.root=LABEL=nowhere", "bootseed.overlay=LABEL=tinyovl"],
        report_files=FILES))
    assert _text(result, MARKER) is None, _diagnose(result)
    mounts = _mounts(result)
    assert mounts["/"][1] == "ext4" and "/media/original-root" not in mounts, mounts
    assert [a["marker"] for a in _actions(result, "rescue-skipped")] == ["DONE"]
    problems = _problems(result)
    assert any("LABEL=nowhere: no such volume within 20s" in p for p in problems), problems
    assert any("too small for the writable layer" in p for p in problems), problems
    assert "bootseed-root: error: takeover" in result.console_text()
    assert result.ok, _diagnose(result)


def test_rescue_off_takeover_mount_and_exec_volumes(lab: BootLab, tmp_path: Path,
                                         disks: dict[str, Path]) -> None:
    disks["ebs"] = root_copy(lab.image, tmp_path / "ebs.raw", "ebsroot",
                             {MARKER: "taken-over\n", "bootseed-volume.yaml": "action: root\n"})
    disks["data"] = small_volume(tmp_path / "data.raw", "data", {
        "bootseed-volume.yaml": "action: mount\nmountpoint: /srv/data\n", "hello": "hi\n"})
    disks["tool"] = small_volume(tmp_path / "tool.raw", None, {
        "bootseed-volume.yaml": "action: exec\nrun: setup.sh\n",
        "setup.sh": "#!/bin/sh\necho \"setup ran\" | tee -a /var/tmp/volume-exec-count\n"})
    # An unmarked rescue volume too: bootseed.rescue=off must leave it alone.
    disks["rescue"] = root_copy(lab.image, tmp_path / "rescue.raw", "RESCUE",
                                {MARKER: "rescue\n"})
    result = lab.boot(BootOptions(
        nocloud_dir=EXAMPLE_SEED, disks=[ExtraDisk("ebs", "11G"), ExtraDisk("data", "64M"),
                                         ExtraDisk("tool", "64M"), ExtraDisk("rescue", "11G")],
        kernel_args=["bootseed.rescue=off"],
        report_files=[*FILES, "/srv/data/hello", "/var/tmp/volume-exec-count",
                      "/var/log/bootseed/volumes.log", "/etc/fstab"]))
    assert _text(result, MARKER) == "taken-over\n", _diagnose(result)
    assert _actions(result, "takeover")[0]["label"] == "ebsroot"
    assert _actions(result, "rescue") == [] and _actions(result, "rescue-skipped") == []
    assert _mounts(result)["/srv/data"][1:] == ("ext4", "rw")
    assert _text(result, "/srv/data/hello") == "hi\n"
    assert "/srv/data ext4 defaults,nofail 0 2 # bootseed volume" in (
        _text(result, "/etc/fstab") or "")
    assert _text(result, "/var/tmp/volume-exec-count") == "setup ran\n"
    assert "setup ran" in (_text(result, "/var/log/bootseed/volumes.log") or "")
    assert result.ok, _diagnose(result)


def _overlay_seed(tmp_path: Path) -> Path:
    seed = tmp_path / "overlay-seed"
    seed.mkdir()
    (seed / "meta-data").write_text("instance-id: i-overlay-1\n")
    # bootcmd runs on every boot before runcmd: it records whether the file a
    # previous boot wrote is still there.
    (seed / "user-data").write_text(
        "#cloud-config\n"
        "bootcmd:\n"
        "  - if [ -e /root/overlay-proof ]; then echo kept; else echo gone; fi"
        " > /run/overlay-before\n"
        "runcmd:\n  - echo written-in-boot-1 > /root/overlay-proof\n")
    return seed


def _next_power_on(lab: BootLab, result: BootResult) -> BootLab:
    """A lab whose image is the disk ``result``'s boot left behind: the next boot of
    that machine. (The lab's in-guest reboot counter cannot work here: it lives on the
    root, which a tmpfs overlay forgets.)"""
    disk = result.workdir / "disk.qcow2"
    write_manifest(read_manifest(lab.image), disk)
    return BootLab(disk, result.workdir / "next-boots")


def test_tmpfs_overlay_forgets_at_power_off_and_never_writes_the_root_partition(
        lab: BootLab, tmp_path: Path) -> None:
    seed = _overlay_seed(tmp_path)
    options = BootOptions(nocloud_dir=seed, kernel_args=["bootseed.overlay=tmpfs"],
                          report_files=[*FILES, "/root/overlay-proof", "/run/overlay-before"])
    first = lab.boot(options)
    assert _text(first, "/root/overlay-proof") == "written-in-boot-1\n", _diagnose(first)
    mounts = _mounts(first)
    assert mounts["/"][1] == "overlay" and mounts["/media/root-rw"][1] == "tmpfs", mounts
    assert mounts["/media/root-ro"][1:] == ("ext4", "ro")
    assert _root_partition_writes(lab, first) == []
    next_lab = _next_power_on(lab, first)
    second = next_lab.boot(options)
    # Boot 2 starts without boot 1's writes (the agent's state went with them, so it is
    # a first boot again and runcmd writes the file anew).
    assert _text(second, "/run/overlay-before") == "gone\n", _diagnose(second)
    assert _root_partition_writes(next_lab, second) == []


def test_volume_overlay_persists_and_leaves_the_root_partition_alone(
        lab: BootLab, tmp_path: Path, disks: dict[str, Path]) -> None:
    blank = tmp_path / "ovl.raw"
    with open(blank, "wb") as handle:
        handle.truncate(256 * 1024 * 1024)
    disks["ovl"] = blank
    first = lab.boot(BootOptions(nocloud_dir=_overlay_seed(tmp_path),
                                 disks=[ExtraDisk("ovl", "256M")],
                                 kernel_args=["bootseed.overlay=LABEL=ovl,mkfs"],
                                 report_files=[*FILES, "/root/overlay-proof"]))
    assert _text(first, "/root/overlay-proof") == "written-in-boot-1\n", _diagnose(first)
    [record] = _actions(first, "overlay")
    assert record["formatted"] is True
    assert _root_partition_writes(lab, first) == []
    # Boot 2 gets the volume as boot 1 left it, a fresh copy of the image, and no seed.
    disks["ovl"] = first.workdir / "disk-ovl.raw"
    second = lab.boot(BootOptions(disks=[ExtraDisk("ovl", "256M")],
                                  kernel_args=["bootseed.overlay=LABEL=ovl"],
                                  report_files=[*FILES, "/root/overlay-proof"]))
    assert _text(second, "/root/overlay-proof") == "written-in-boot-1\n", _diagnose(second)
    assert _actions(second, "overlay")[0]["formatted"] is False
    assert _mounts(second)["/media/root-rw"][1] == "ext4"
    assert _root_partition_writes(lab, second) == []
