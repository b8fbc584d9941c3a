"""``seed_random``: feed the kernel's random pool (cloud-init 22.4, key ``random_seed``).

The seed is ``random_seed.data`` (decoded by ``encoding``) followed by the
meta-data's ``random_seed`` when the cloud gives one. It is appended to
``random_seed.file`` (default ``/dev/urandom``). Devices are written only on the
host: in a ``--root`` target ``/dev`` is not this boot's kernel, so nothing is
written there and a note says so. Then ``random_seed.command`` runs in the
target with ``RANDOM_SEED_FILE`` set.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

DEFAULT_FILE = "/dev/urandom"
MAX_SEED = 1024 * 1024  # decoded bytes: a seed is small, a gzip bomb is not
ENCODINGS = {"raw": "text", "base64": "b64", "b64": "b64", "gzip": "gz", "gz": "gz"}
SCHEMA: dict[str, Any] = {
    "properties": {
        "random_seed": {
            "type": "object",
            "properties": {
                "file": {"type": "string"},
                # Text, or bytes from YAML's !!binary (which JSON types cannot express).
                "data": {},
                "encoding": {"type": "string", "enum": sorted(ENCODINGS)},
                "command": {"type": "array", "items": {"type": "string"}},
                "command_required": {"type": "boolean"},
            },
        }
    }
}


def seed_bytes(ctx: ModuleContext, cfg: dict[str, Any]) -> bytes | None:
    """The configured data then the meta-data seed; None when the data is unusable."""
    from bootseed.late.modules.write_files import decode_content

    data = b""
    if cfg.get("data") is not None:
        encoding = cfg.get("encoding", "raw")
        if encoding not in ENCODINGS:
            ctx.problems.append(Problem("random_seed.encoding", "must be one of "
                                        + ", ".join(sorted(ENCODINGS)) + "; no seed written"))
            return None
        if isinstance(cfg["data"], str):
            ctx.add_secret(cfg["data"])
        try:
            data = decode_content(cfg["data"], ENCODINGS[encoding], limit=MAX_SEED)
        except ValueError as exc:
            ctx.problems.append(Problem("random_seed.data", f"{exc}; no seed written"))
            return None
    meta = ctx.instance.metadata.get("random_seed")
    if isinstance(meta, str) and meta:
        ctx.add_secret(meta)
        data += meta.encode("utf-8")
    elif isinstance(meta, bytes):
        data += meta
    return data


def append_seed(ctx: ModuleContext, path: str, data: bytes) -> None:
    """Append to a device on the host or to a regular file in the target."""
    try:
        st = ctx.target.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    is_device = path.startswith("/dev/") or (st is not None and stat.S_ISCHR(st.st_mode))
    if is_device:
        if not ctx.target.is_host:
            ctx.problems.append(Problem("random_seed.file", f"{path} is a device, and the "
                                        "target is not the running system: nothing written "
                                        "there", Level.NOTE))
            return
        if st is None or not stat.S_ISCHR(st.st_mode):
            ctx.problems.append(Problem("random_seed.file", f"{path} is not a character "
                                        "device; no seed written"))
            return
        fd = os.open(ctx.target.real_path(path), os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return
    if st is not None and not stat.S_ISREG(st.st_mode):
        ctx.problems.append(Problem("random_seed.file", f"{path} is not a regular file or a "
                                    "device; no seed written"))
        return
    current = ctx.target.read_bytes(path) if st is not None else b""
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o600
    ctx.target.write(path, current + data, mode=mode)


def command_found(ctx: ModuleContext, name: str) -> bool:
    from bootseed.late.execute import DEFAULT_PATH

    if "/" in name:
        return ctx.target.exists(name)
    return any(ctx.target.exists(f"{d}/{name}") for d in DEFAULT_PATH.split(":"))


def run_command(ctx: ModuleContext, cfg: dict[str, Any], path: str) -> None:
    from bootseed.late.execute import TargetExecError, run_in_target

    command = cfg.get("command")
    if command is None:
        return
    required = cfg.get("command_required", False)
    if not isinstance(command, list) or not command or not all(
            isinstance(a, str) for a in command):
        ctx.problems.append(Problem("random_seed.command", "must be a list of strings "
                                    "(an argv); not run"))
        return
    if not command_found(ctx, command[0]):
        if required is True:
            ctx.problems.append(Problem("random_seed.command", f"{command[0]} is not in the "
                                        "target and command_required is true"))
        else:
            ctx.log.info("random_seed: %s is not in the target; skipped", command[0])
        return
    try:
        run_in_target(ctx.target, command, env={"RANDOM_SEED_FILE": path},
                      what="random_seed.command")
    except TargetExecError as exc:
        ctx.problems.append(Problem("random_seed.command", str(exc)))


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("random_seed", {})
    if not isinstance(cfg, dict):
        ctx.problems.append(Problem("random_seed", "must be a mapping; no seed written"))
        return
    path = cfg.get("file", DEFAULT_FILE)
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        ctx.problems.append(Problem("random_seed.file", "must be an absolute path; no seed "
                                    "written"))
        return
    data = seed_bytes(ctx, cfg)
    if data:
        append_seed(ctx, path, data)
        ctx.log.info("random_seed: %d bytes added to %s", len(data), path)
    run_command(ctx, cfg, path)


MODULE = ModuleSpec(
    name="seed_random",
    stage=Stage.INIT,
    order=5,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    # No activating key: the meta-data's seed is used without any cloud-config.
    aliases=("random_seed",),
)
