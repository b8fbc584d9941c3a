"""A volume attached while the system runs gets the boot-time treatment.

udev starts ``bootseed-volume@MAJ:MIN.service`` for each block device that holds a
filesystem (``systemd/60-bootseed-volume.rules``); the unit runs ``bootseed volume attach
/dev/block/MAJ:MIN``, which calls :func:`attach`. What it does, in this order:

1. nothing at all until the late agent has finished its first boot (the current
   instance's ``boot-finished`` exists) or when ``bootseed=off`` is on the kernel command
   line: volumes present at boot are the boot stages' business;
2. nothing for a device that is mounted anywhere (the root, a volume mounted already:
   udev firing twice, or a volume the boot already consumed);
3. its ``bootseed-volume.yaml`` read exactly as the initramfs reads it
   (``bootseed.early.volumes``: read-only mount, same parser, same image switches
   ``volumes: {consume, actions}`` and ``bootseed.volumes=``), its ``mount``/``exec``
   action carried out by the ``volumes`` module's own code; ``root`` only acts at boot;
4. the ``# bootseed`` lines the ``mounts`` module wrote to ``/etc/fstab`` whose device is
   this volume (``LABEL=``, ``UUID=``, a device path) mounted (``mount MOUNTPOINT``).

Attaches are serialised by a lock; a second run for the same volume finds it mounted or
its script done (the ``volumes`` module's semaphore) and does nothing. One JSON line per
run goes to ``/var/log/bootseed/attach.log``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.actions import VolumeExec, VolumeMount
from bootseed.contract.problems import Level, Problem, problems_to_json
from bootseed.early.blockdev import BlockDevice
from bootseed.late import filelock
from bootseed.late.target import TargetRoot

ATTACH_LOG = "/var/log/bootseed/attach.log"
ATTACH_LOCK = "/run/bootseed-volume.lock"
FINISHED = "/var/lib/bootseed/instance/boot-finished"
LOCK_WAIT_S = 600.0
MOUNT_TIMEOUT_S = 60.0


@dataclass
class AttachReport:
    device: str
    volume: str = ""
    done: list[str] = field(default_factory=list)
    skipped: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(p.level is Level.ERROR for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {"time": round(time.time()), "device": self.device, "volume": self.volume,
                "done": self.done, "skipped": self.skipped,
                "problems": problems_to_json(self.problems)}


def not_ready(target: TargetRoot, cmdline: str) -> str:
    """Why nothing may run for an attached volume now ("" when it may)."""
    from bootseed.contract.cmdline import parse

    kernel = parse(cmdline)
    if kernel.disabled_by:
        return f"{kernel.disabled_by} on the kernel command line"
    if not target.exists(FINISHED):
        return (f"the late agent has not finished its first boot ({FINISHED} is missing); "
                "volumes present at boot are consumed by the boot stages")
    return ""


@dataclass(frozen=True)
class FstabEntry:
    device: str
    mountpoint: str
    fstype: str
    options: str


def fstab_entries_for(fstab: str, volume: BlockDevice) -> list[FstabEntry]:
    """The ``mounts`` module's fstab lines (``# bootseed``) that name ``volume``."""
    from bootseed.early.blockdev import matches
    from bootseed.late.fstabmark import is_ours

    found = []
    for line in fstab.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0].startswith("#") or not is_ours(line):
            continue
        entry = FstabEntry(*fields[:4])
        if entry.fstype == "swap" or not entry.mountpoint.startswith("/"):
            continue
        if matches(volume, entry.device):
            found.append(entry)
    return found


def attach(device: str, target: TargetRoot, cmdline: str, log: logging.Logger,
           mount_base: str = "/run") -> AttachReport:
    """Treat the volume on ``device`` as the boot would; never raises for a bad volume."""
    report = AttachReport(device)
    report.skipped = not_ready(target, cmdline)
    if report.skipped:
        return report
    from bootseed.early import blockdev

    volume = blockdev.probe(os.path.realpath(device))
    if volume is None:
        report.skipped = "holds no filesystem"
        return report
    report.volume = volume.describe()
    in_use = [e.mountpoint for e in blockdev.mount_table()
              if volume.rdev is not None and os.makedev(*e.majmin) == volume.rdev]
    if in_use:
        report.skipped = f"mounted already on {', '.join(in_use)}"
        return report
    _volume_file(report, volume, target, cmdline, log, mount_base)
    _fstab_entries(report, volume, target, log)
    if not report.done and not report.problems:
        report.skipped = "no bootseed-volume.yaml and no mounts entry names it"
    return report


def _volume_file(report: AttachReport, volume: BlockDevice, target: TargetRoot,
                 cmdline: str, log: logging.Logger, mount_base: str) -> None:
    import subprocess

    from bootseed.contract.cmdline import parse
    from bootseed.early.budget import Budget
    from bootseed.early.rootswitch import Report, read_image_config
    from bootseed.early.volumes import scan_volume_files
    from bootseed.late.volumeactions import exec_volume, mount_volume

    config_report = Report()
    config = read_image_config(target.root, config_report)
    report.problems += config_report.problems
    switch = parse(cmdline).rootswitch.consume
    if not (switch if switch is not None else config.consume):
        report.problems.append(Problem("bootseed-volume.yaml", "volume consumption is off "
                                       "(volumes.consume in the image config or "
                                       "bootseed.volumes= on the kernel command line); "
                                       "not read", Level.NOTE))
        return
    scan = scan_volume_files([volume], Budget(config.timeout), config.actions, mount_base)
    report.problems += [Problem("bootseed-volume.yaml", p, Level.ERROR) for p in scan.problems]
    for spec in scan.specs:
        if spec.action == "root":
            report.problems.append(Problem("bootseed-volume.yaml", "action: root only acts "
                                           "at boot; nothing done now", Level.NOTE))
            continue
        action = spec.as_action()
        try:
            if isinstance(action, VolumeMount):
                mount_volume(target, log, action)
                report.done.append(f"volume-mount on {action.mountpoint}")
            elif isinstance(action, VolumeExec):
                if exec_volume(target, log, action):
                    report.done.append(f"volume-exec {action.run}")
                else:
                    report.problems.append(Problem("volume-exec", f"{action.run} ran on this "
                                                   "volume before; not run again",
                                                   Level.NOTE))
        except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
            report.problems.append(Problem(f"{action.KIND}", str(exc), Level.ERROR))


def _fstab_entries(report: AttachReport, volume: BlockDevice, target: TargetRoot,
                   log: logging.Logger) -> None:
    import subprocess

    from bootseed.early.blockdev import mount_at
    from bootseed.late.fstabmark import FSTAB

    for entry in fstab_entries_for(target.read_text(FSTAB, default=""), volume):
        where = f"mounts: {entry.device}"
        host_path = target.real_path(entry.mountpoint)
        if mount_at(str(host_path)) is not None:
            report.problems.append(Problem(where, f"{entry.mountpoint} has something mounted "
                                                  "already; left alone", Level.WARNING))
            continue
        with target.open_dir(entry.mountpoint, create=True):
            pass
        # The probed device and the line's own type and options: the same mount as
        # `mount MOUNTPOINT`, without resolving LABEL=/UUID= a second time.
        argv = ["mount", "-o", entry.options, volume.path, str(host_path)]
        if entry.fstype != "auto":
            argv[1:1] = ["-t", entry.fstype]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=MOUNT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            report.problems.append(Problem(where, f"mount {entry.mountpoint} timed out",
                                           Level.ERROR))
            continue
        if proc.returncode != 0:
            report.problems.append(Problem(where, f"mount {entry.mountpoint} exited with "
                                                  f"status {proc.returncode}: "
                                                  f"{' '.join(proc.stderr.split())[-200:]}",
                                           Level.ERROR))
            continue
        log.info("mounted %s (%s) on %s", volume.path, entry.device, entry.mountpoint)
        report.done.append(f"mounts entry {entry.device} on {entry.mountpoint}")


@contextmanager
def attach_lock(path: str, wait: float = LOCK_WAIT_S) -> Iterator[None]:
    """One attach at a time (two volumes attached together both write /etc/fstab)."""
    with filelock.held(path, wait):
        yield


def record(target: TargetRoot, report: AttachReport) -> None:
    from bootseed.late.logsetup import open_private_append

    log = target.real_path(ATTACH_LOG)
    log.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = open_private_append(log, 0o600)
    try:
        os.write(fd, (json.dumps(report.as_dict(), sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def lock_path(target: TargetRoot) -> Path:
    path = target.real_path(ATTACH_LOCK)
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    return path
