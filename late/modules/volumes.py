"""``volumes``: the late half of volume consumption (seeds/002, "auto consumption of EBS
volumes").

The initramfs stage (``bootseed.early.rootswitch``) found the volumes whose
``bootseed-volume.yaml`` asks for ``action: mount`` or ``action: exec`` and recorded
them as ``volume-mount`` / ``volume-exec`` entries in ``seed.json``'s ``actions`` (or in
``rootswitch.json`` beside it when there was no seed). This module acts on them:

- ``volume-mount``: an ``/etc/fstab`` line by UUID with ``nofail`` (so a detached volume
  does not stop a later boot), then the mount now. An existing fstab entry for the same
  mount point that bootseed did not write wins: it is reported, never replaced.
- ``volume-exec``: the volume mounted read-only, its script run as root with the output
  in ``/var/log/bootseed/volumes.log``; once per volume and script content.

The image switch ``volumes: {consume: false}`` (bootseed.cfg) is read by the early
stage, which then records nothing; its schema lives here so the late agent accepts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

SEED_DIR = "/run/bootseed"
FSTAB = "/etc/fstab"
FSTAB_TAG = "# bootseed volume"
EXEC_LOG = "/var/log/bootseed/volumes.log"
EXEC_STATE = "/var/lib/bootseed/volumes"
EXEC_TIMEOUT_S = 3600.0
MOUNT_TIMEOUT_S = 60.0

SCHEMA = {
    "properties": {
        "volumes": {
            "type": "object",
            "description": "Consumption of attached volumes holding bootseed-volume.yaml "
                           "(read by the initramfs stage from the image's bootseed.cfg).",
            "properties": {
                "consume": {"type": "boolean"},
                "actions": {"type": "array", "items": {"enum": ["root", "mount", "exec"]}},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            },
            "additionalProperties": False,
        },
        "overlay": {
            "description": "Overlay root for every boot: tmpfs, LABEL=NAME[,mkfs], UUID=.. "
                           "or /dev/..[,mkfs] (read by the initramfs stage).",
            "oneOf": [{"type": "string"}, {"const": False}],
        },
    }
}


def recorded_actions(seed_dir: Path) -> list[dict[str, Any]]:
    """``volume-*`` entries from seed.json and rootswitch.json (both may exist when the
    late agent discovered the seed itself after an initramfs without one)."""
    found: list[dict[str, Any]] = []
    for name in ("seed.json", "rootswitch.json"):
        try:
            doc = json.loads((seed_dir / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise ValueError(f"{seed_dir / name}: unreadable: {exc}") from exc
        for action in doc.get("actions") or [] if isinstance(doc, dict) else []:
            if isinstance(action, dict) and action not in found \
                    and action.get("action") in ("volume-mount", "volume-exec"):
                found.append(action)
    return found


def handle(ctx: ModuleContext) -> None:
    actions = recorded_actions(ctx.target.real_path(SEED_DIR))
    if not actions:
        ctx.log.info("no volumes to consume")
        return
    errors = []
    for action in actions:
        what = f"{action['action']} {action.get('device')} (UUID={action.get('uuid')})"
        try:
            if action["action"] == "volume-mount":
                mount_volume(ctx, action)
            else:
                exec_volume(ctx, action)
        except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
            ctx.log.error("%s: %s", what, exc)
            errors.append(f"{what}: {exc}")
    if errors:
        raise RuntimeError("; ".join(errors))


def _device(action: dict[str, Any]) -> str:
    """The device node now: by UUID (device names can change between boots)."""
    from bootseed.early import volumes

    uuid = action.get("uuid")
    if not uuid:
        raise ValueError("recorded without a filesystem UUID; not consumed")
    by_uuid = Path("/dev/disk/by-uuid") / uuid
    if by_uuid.exists():
        return os.path.realpath(by_uuid)
    recorded = action.get("device")
    seen = "not probed"
    if isinstance(recorded, str):
        volume = volumes.probe(recorded)
        if volume is not None and volume.uuid == uuid:
            return recorded
        seen = f"holds {volume.describe()}" if volume else "holds no filesystem"
    for volume in volumes.scan():
        if volumes.matches(volume, f"UUID={uuid}"):
            return volume.path
    raise RuntimeError(f"no volume with UUID={uuid} attached now ({recorded} {seen})")


def fstab_line(action: dict[str, Any]) -> str:
    options = [o for o in str(action.get("options") or "defaults").split(",") if o]
    if "nofail" not in options:
        options.append("nofail")
    return (f"UUID={action['uuid']} {action['mountpoint']} {action.get('fstype') or 'auto'} "
            f"{','.join(options)} 0 2 {FSTAB_TAG}\n")


def update_fstab(text: str, action: dict[str, Any]) -> str:
    """``text`` with this volume's line in it, once; raises when an entry bootseed did not
    write already owns the mount point."""
    line = fstab_line(action)
    kept = []
    for existing in text.splitlines(keepends=True):
        fields = existing.split()
        ours = existing.rstrip().endswith(FSTAB_TAG)
        if fields and not fields[0].startswith("#") and len(fields) >= 2:
            same_point = fields[1].rstrip("/") == action["mountpoint"]
            if same_point and not ours:
                raise ValueError(f"{FSTAB} already mounts something on {action['mountpoint']}: "
                                 f"{existing.strip()!r}; left alone")
            if ours and (same_point or fields[0] == f"UUID={action['uuid']}"):
                continue
        kept.append(existing)
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    return "".join(kept) + line


def mount_volume(ctx: ModuleContext, action: dict[str, Any]) -> None:
    mountpoint = action.get("mountpoint")
    if not isinstance(mountpoint, str) or not mountpoint.startswith("/"):
        raise ValueError(f"mountpoint {mountpoint!r} is not an absolute path")
    fstab = ctx.target.read_text(FSTAB, default="")
    updated = update_fstab(fstab, action)
    if updated != fstab:
        ctx.target.write(FSTAB, updated, mode=0o644)
    host_path = ctx.target.real_path(mountpoint)
    if _is_mountpoint(host_path):
        ctx.log.info("%s already mounted", mountpoint)
        return
    device = _device(action)
    host_path.mkdir(mode=0o755, parents=True, exist_ok=True)
    options = str(action.get("options") or "defaults")
    cmd = ["mount", "-o", options, device, str(host_path)]
    if action.get("fstype"):
        cmd[1:1] = ["-t", str(action["fstype"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MOUNT_TIMEOUT_S,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mount {device} on {mountpoint}: {proc.stderr.strip()}")
    ctx.log.info("mounted %s (UUID=%s) on %s", device, action["uuid"], mountpoint)


def _is_mountpoint(path: Path) -> bool:
    from bootseed.early.volumes import mount_at

    return path.is_dir() and mount_at(str(path)) is not None


def exec_volume(ctx: ModuleContext, action: dict[str, Any]) -> None:
    from bootseed.early import volumes

    script = action.get("run")
    if not isinstance(script, str) or script.startswith("/") or ".." in script.split("/"):
        raise ValueError(f"run: {script!r} is not a path inside the volume")
    device = _device(action)
    inside = f"{SEED_DIR}/volume-exec/{action['uuid']}"
    host_dir = ctx.target.real_path(inside)
    host_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    volume = volumes.Volume(device, action.get("fstype"), action.get("label"), action["uuid"])
    options = volumes.NO_WRITE_OPTIONS.get(volume.fstype or "", "ro")
    volumes.mount(volume, str(host_dir), options, MOUNT_TIMEOUT_S)
    try:
        path = host_dir / script
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        semaphore = ctx.target.real_path(f"{EXEC_STATE}/exec-{action['uuid']}-{digest}")
        if semaphore.exists():
            ctx.log.info("%s on UUID=%s already ran (%s)", script, action["uuid"], semaphore)
            return
        status, output = _run_script(ctx, f"{inside}/{script}", inside, action,
                                     os.access(path, os.X_OK))
        _log_output(ctx, action, script, status, output)
        if status != 0:
            raise RuntimeError(f"{script} exited with status {status} (output in {EXEC_LOG})")
        ctx.target.write(f"{EXEC_STATE}/exec-{action['uuid']}-{digest}",
                         f"{time.time():.0f} {script}\n", mode=0o600, dir_mode=0o700)
    finally:
        volumes.umount(str(host_dir))
        host_dir.rmdir()


def _run_script(ctx: ModuleContext, script: str, volume_dir: str, action: dict[str, Any],
                executable: bool) -> tuple[int, bytes]:
    from bootseed.late.execute import DEFAULT_PATH

    argv = [script] if executable else ["/bin/sh", script]
    if not ctx.target.is_host:
        argv = ["chroot", str(ctx.target.root), *argv]
    env = {"PATH": DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8",
           "BOOTSEED_VOLUME_DIR": volume_dir, "BOOTSEED_VOLUME_UUID": str(action["uuid"]),
           "BOOTSEED_VOLUME_DEVICE": str(action.get("device") or "")}
    ctx.log.info("running %s from volume UUID=%s", script, action["uuid"])
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, timeout=EXEC_TIMEOUT_S,
                              cwd=str(ctx.target.real_path(volume_dir)), check=False)
    except subprocess.TimeoutExpired as exc:
        return -1, (exc.output or b"") + b"\n[killed after the time limit]\n"
    return proc.returncode, proc.stdout


def _log_output(ctx: ModuleContext, action: dict[str, Any], script: str, status: int,
                output: bytes) -> None:
    from bootseed.late.logsetup import open_private_append

    log = ctx.target.real_path(EXEC_LOG)
    log.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = open_private_append(log, 0o600)
    try:
        os.write(fd, f"--- bootseed volume UUID={action['uuid']} {script} "
                     f"(exit {status})\n".encode() + output)
        if output and not output.endswith(b"\n"):
            os.write(fd, b"\n")
    finally:
        os.close(fd)
    for line in output.decode("utf-8", "replace").splitlines()[-20:]:
        ctx.log.info("%s: %s", script, line)


MODULE = ModuleSpec(
    name="volumes",
    stage=Stage.INIT,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
