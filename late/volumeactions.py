"""Carrying out a volume's ``mount`` and ``exec`` actions (``bootseed.contract.actions``):
the ``volumes`` module does it for the volumes the initramfs found at boot, ``bootseed
volume attach`` (``bootseed.late.hotattach``) for a volume attached while the system runs.

- ``volume-mount``: an ``/etc/fstab`` line by UUID with ``nofail`` (so a detached volume
  does not stop a later boot), then the mount now. An existing fstab entry for the same
  mount point that bootseed did not write wins: it is reported, never replaced.
- ``volume-exec``: the volume mounted read-only, its script run as root with the output
  in ``/var/log/bootseed/volumes.log``; once per volume and script content.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import time
from pathlib import Path

from bootseed.contract.actions import VolumeAction, VolumeExec, VolumeMount
from bootseed.contract.seedcache import DEFAULT_SEED_DIR
from bootseed.late.fstabmark import FSTAB
from bootseed.late.target import TargetRoot

FSTAB_TAG = "# bootseed volume"
EXEC_LOG = "/var/log/bootseed/volumes.log"
EXEC_STATE = "/var/lib/bootseed/volumes"
EXEC_TIMEOUT_S = 3600.0
MOUNT_TIMEOUT_S = 60.0


def _device(action: VolumeAction) -> str:
    """The device node now: by UUID (device names can change between boots)."""
    from bootseed.early import blockdev

    uuid = action.volume.uuid
    if not uuid:
        raise ValueError("recorded without a filesystem UUID; not consumed")
    by_uuid = Path("/dev/disk/by-uuid") / uuid
    if by_uuid.exists():
        return os.path.realpath(by_uuid)
    recorded = action.volume.device
    volume = blockdev.probe(recorded)
    if volume is not None and volume.uuid == uuid:
        return recorded
    seen = f"holds {volume.describe()}" if volume else "holds no filesystem"
    for volume in blockdev.scan():
        if blockdev.matches(volume, f"UUID={uuid}"):
            return volume.path
    raise RuntimeError(f"no volume with UUID={uuid} attached now ({recorded} {seen})")


def fstab_line(action: VolumeMount) -> str:
    options = [o for o in (action.options or "defaults").split(",") if o]
    if "nofail" not in options:
        options.append("nofail")
    return (f"UUID={action.volume.uuid} {action.mountpoint} {action.volume.fstype or 'auto'} "
            f"{','.join(options)} 0 2 {FSTAB_TAG}\n")


def update_fstab(text: str, action: VolumeMount) -> str:
    """``text`` with this volume's line in it, once; raises when an entry bootseed did not
    write already owns the mount point."""
    line = fstab_line(action)
    kept = []
    for existing in text.splitlines(keepends=True):
        fields = existing.split()
        ours = existing.rstrip().endswith(FSTAB_TAG)
        if fields and not fields[0].startswith("#") and len(fields) >= 2:
            same_point = fields[1].rstrip("/") == action.mountpoint
            if same_point and not ours:
                raise ValueError(f"{FSTAB} already mounts something on {action.mountpoint}: "
                                 f"{existing.strip()!r}; left alone")
            if ours and (same_point or fields[0] == f"UUID={action.volume.uuid}"):
                continue
        kept.append(existing)
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    return "".join(kept) + line


def mount_volume(target: TargetRoot, log: logging.Logger, action: VolumeMount) -> None:
    """The fstab line, then the mount now (also used for a hot-attached volume)."""
    mountpoint = action.mountpoint
    if not mountpoint.startswith("/"):
        raise ValueError(f"mountpoint {mountpoint!r} is not an absolute path")
    fstab = target.read_text(FSTAB, default="")
    updated = update_fstab(fstab, action)
    if updated != fstab:
        target.write(FSTAB, updated, mode=0o644)
    host_path = target.real_path(mountpoint)
    if _is_mountpoint(host_path):
        log.info("%s already mounted", mountpoint)
        return
    device = _device(action)
    host_path.mkdir(mode=0o755, parents=True, exist_ok=True)
    options = action.options or "defaults"
    cmd = ["mount", "-o", options, device, str(host_path)]
    if action.volume.fstype:
        cmd[1:1] = ["-t", action.volume.fstype]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MOUNT_TIMEOUT_S,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mount {device} on {mountpoint}: {proc.stderr.strip()}")
    log.info("mounted %s (UUID=%s) on %s", device, action.volume.uuid, mountpoint)


def _is_mountpoint(path: Path) -> bool:
    from bootseed.early.blockdev import mount_at

    return path.is_dir() and mount_at(str(path)) is not None


def exec_volume(target: TargetRoot, log: logging.Logger, action: VolumeExec) -> bool:
    """The volume's script, once per volume and script content (also used for a
    hot-attached volume); False when it had run already."""
    from bootseed.early import blockdev

    script = action.run
    if not script or script.startswith("/") or ".." in script.split("/"):
        raise ValueError(f"run: {script!r} is not a path inside the volume")
    device = _device(action)
    uuid = action.volume.uuid
    # A scratch mount point under the runtime directory; nothing recorded is read there.
    inside = f"{DEFAULT_SEED_DIR}/volume-exec/{uuid}"
    host_dir = target.real_path(inside)
    host_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    volume = blockdev.BlockDevice(device, fstype=action.volume.fstype,
                                  label=action.volume.label, uuid=uuid)
    blockdev.mount(volume, str(host_dir), blockdev.read_only_options(volume), MOUNT_TIMEOUT_S)
    try:
        path = host_dir / script
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        semaphore = target.real_path(f"{EXEC_STATE}/exec-{uuid}-{digest}")
        if semaphore.exists():
            log.info("%s on UUID=%s already ran (%s)", script, uuid, semaphore)
            return False
        status, output = _run_script(target, log, f"{inside}/{script}", inside, action,
                                     os.access(path, os.X_OK))
        _log_output(target, log, action, script, status, output)
        if status != 0:
            raise RuntimeError(f"{script} exited with status {status} (output in {EXEC_LOG})")
        target.write(f"{EXEC_STATE}/exec-{uuid}-{digest}",
                     f"{time.time():.0f} {script}\n", mode=0o600, dir_mode=0o700)
        return True
    finally:
        blockdev.umount(str(host_dir))
        host_dir.rmdir()


def _run_script(target: TargetRoot, log: logging.Logger, script: str, volume_dir: str,
                action: VolumeExec, executable: bool) -> tuple[int, bytes]:
    from bootseed.late.execute import DEFAULT_PATH

    argv = [script] if executable else ["/bin/sh", script]
    if not target.is_host:
        argv = ["chroot", str(target.root), *argv]
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8",
           "BOOTSEED_VOLUME_DIR": volume_dir, "BOOTSEED_VOLUME_UUID": str(action.volume.uuid),
           "BOOTSEED_VOLUME_DEVICE": action.volume.device}
    log.info("running %s from volume UUID=%s", script, action.volume.uuid)
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, timeout=EXEC_TIMEOUT_S,
                              cwd=str(target.real_path(volume_dir)), check=False)
    except subprocess.TimeoutExpired as exc:
        return -1, (exc.output or b"") + b"\n[killed after the time limit]\n"
    return proc.returncode, proc.stdout


def _log_output(target: TargetRoot, log: logging.Logger, action: VolumeExec, script: str,
                status: int, output: bytes) -> None:
    from bootseed.late.logsetup import open_private_append

    log_file = target.real_path(EXEC_LOG)
    log_file.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = open_private_append(log_file, 0o600)
    try:
        os.write(fd, f"--- bootseed volume UUID={action.volume.uuid} {script} "
                     f"(exit {status})\n".encode() + output)
        if output and not output.endswith(b"\n"):
            os.write(fd, b"\n")
    finally:
        os.close(fd)
    for line in output.decode("utf-8", "replace").splitlines()[-20:]:
        log.info("%s: %s", script, line)
