"""``mounts``: ``/etc/fstab`` entries and a swap file (keys ``mounts``,
``mount_default_fields``, ``swap``; cloud-init 22.4's meanings).

``mounts`` is a list of ``[device, mountpoint, fstype, options, dump, pass]``; missing or
null fields come from ``mount_default_fields``. Devices may be ``/dev/..``,
``LABEL=..``, ``UUID=..``, a network source, a short ``sdb``/``xvdb``/``vdb``/``hdb``
(``/dev/`` is added) or an EC2 name (``ephemeral0``..N, ``ebsN``, ``swap``, ``ami``,
``root``) looked up in the meta-data's ``block-device-mapping`` and translated to the
guest's name (``sdb`` is ``xvdb`` on Xen, ``vdb`` on virtio: the first that exists in
the target's ``/sys/class/block`` or ``/dev``). A mount point of null drops that
device (also a default). As in cloud-init, ``[ephemeral0, /mnt]`` and
``[swap, none, swap, sw, 0, 0]`` are added when the block-device-mapping names those
devices and no entry mentions them.

Every line bootseed writes ends with ``# bootseed`` and carries ``nofail``; on each
boot those lines are written again from the configuration (so a changed
``ephemeral0`` is followed) and every other line is left byte for byte alone. A device
that already has a line bootseed did not write keeps it. A missing device is reported,
and its line is still written. On the running system (target ``/``), systemd is
reloaded and the new lines are mounted (swap: ``swapon``); a ``--root`` target only
gets the file and the mount point directories.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.disknames import Devices
from bootseed.late.fstabmark import FSTAB, MARK, is_ours
from bootseed.late.linegrammar import LineGrammarError, fstab_field
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

SERVICE = "bootseed.service"
# cloud-init writes x-systemd.requires=cloud-init.service: bootseed orders the mounts
# after its unit without pulling it into boots where it is disabled.
DEFAULT_OPTIONS = f"defaults,nofail,x-systemd.after={SERVICE}"
DEFAULT_FIELDS: tuple[str | None, ...] = (None, None, "auto", DEFAULT_OPTIONS, "0", "2")
DEFAULT_SWAP_FILE = "/swap.img"
COMMAND_TIMEOUT_S = 120.0

_FIELD = {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
SCHEMA: dict[str, Any] = {
    "properties": {
        "mounts": {
            "type": "array",
            "items": {"type": "array", "items": _FIELD, "minItems": 1, "maxItems": 6},
        },
        "mount_default_fields": {
            "type": "array", "items": _FIELD, "minItems": 6, "maxItems": 6,
        },
        "swap": {
            "type": "object",
            "properties": {
                "filename": {"type": "string"},
                "size": {"oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 0},
                                   {"type": "string"}]},
                "maxsize": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
            },
            "additionalProperties": False,
        },
    }
}


@dataclass(frozen=True)
class Entry:
    device: str
    mountpoint: str
    fstype: str
    options: str
    dump: str
    passno: str

    @property
    def is_swap(self) -> bool:
        return self.fstype == "swap"

    def line(self) -> str:
        return (f"{self.device} {self.mountpoint} {self.fstype} {self.options} {self.dump} "
                f"{self.passno} {MARK}\n")




@dataclass
class Plan:
    entries: list[Entry]
    problems: list[Problem]


def _fields(raw: list[Any], defaults: tuple[str | None, ...]) -> list[str | None]:
    given = [None if value is None else str(value) for value in raw]
    given += [None] * (6 - len(given))
    return [value if value is not None else default for value, default in zip(given, defaults,
                                                                             strict=True)]


def default_fields(cfg: dict[str, Any]) -> tuple[str | None, ...]:
    fields = cfg.get("mount_default_fields")
    if not isinstance(fields, list) or len(fields) != 6:
        return DEFAULT_FIELDS
    return tuple(None if value is None else str(value) for value in fields)


def plan(cfg: dict[str, Any], fstab: str, devices: Devices, swap_file: str | None) -> Plan:
    """The entries bootseed owns in ``fstab`` for this configuration."""
    problems: list[Problem] = []
    defaults = default_fields(cfg)
    foreign = [line.split() for line in fstab.splitlines()
               if line.split() and not line.lstrip().startswith("#") and not is_ours(line)]
    foreign_devices = {fields[0] for fields in foreign}
    foreign_points = {fields[1] for fields in foreign if len(fields) > 1}
    wanted: list[list[str | None]] = []
    for index, raw in enumerate(cfg.get("mounts") or []):
        where = f"mounts[{index}]"
        if not isinstance(raw, list) or not 1 <= len(raw) <= 6:
            problems.append(Problem(where, "must be a list of 1 to 6 fstab fields",
                                    Level.ERROR))
            continue
        spec = str(raw[0])
        device = devices.resolve(spec)
        if device is None:
            mapped = devices.mapping.get("ephemeral0" if spec == "ephemeral" else spec)
            problems.append(Problem(where, f"{spec} ({mapped}): the block-device-mapping "
                                           "names it but no such disk is here; skipped"
                                    if mapped else f"{spec}: not in this instance's "
                                    "block-device-mapping; skipped", Level.NOTE))
            continue
        fields = _fields([device, *raw[1:]], defaults)
        if len(raw) > 1 and raw[1] is None:
            fields[1] = None  # null mount point: drop this device, even a default
        if fields[1] is None:
            for earlier in wanted:
                if earlier[0] == device:
                    earlier[1] = None
        wanted.append(fields)
    for spec, rest in (("ephemeral0", ["/mnt", "auto", defaults[3], "0", "2"]),
                       ("swap", ["none", "swap", "sw", "0", "0"])):
        device = devices.resolve(spec)
        if device is not None and not any(fields[0] == device for fields in wanted):
            wanted.append([device, *rest])
    if swap_file is not None:
        wanted.append([swap_file, "none", "swap", "sw", "0", "0"])

    entries: list[Entry] = []
    for fields in wanted:
        device, point = fields[0], fields[1]
        if point is None or device is None:
            continue
        where = f"mounts: {device}"
        if device in foreign_devices or (point != "none" and point in foreign_points):
            problems.append(Problem(where, f"{FSTAB} already has a line for it that "
                                           "bootseed did not write; left alone", Level.NOTE))
            continue
        try:
            checked = [fstab_field(str(value), f"{where} field {n + 1}")
                       for n, value in enumerate(fields)]
        except LineGrammarError as exc:
            problems.append(Problem(where, str(exc), Level.ERROR))
            continue
        options = checked[3].split(",")
        if "nofail" not in options:
            options.append("nofail")
        entry = Entry(checked[0], checked[1], checked[2], ",".join(options), checked[4],
                      checked[5])
        if not entry.is_swap and not entry.mountpoint.startswith("/"):
            problems.append(Problem(where, f"mount point {entry.mountpoint!r} is not an "
                                           "absolute path", Level.ERROR))
            continue
        if any(e.device == entry.device for e in entries):
            continue  # cloud-init keeps the first line for a device
        if devices.present(entry.device) is False:
            problems.append(Problem(where, "the device is not present now; its line is "
                                           "written with nofail", Level.WARNING))
        entries.append(entry)
    return Plan(entries, problems)


def rewrite(fstab: str, entries: list[Entry]) -> str:
    """``fstab`` with bootseed's lines replaced by ``entries``; other lines untouched."""
    kept = [line for line in fstab.splitlines(keepends=True) if not is_ours(line)]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    return "".join(kept) + "".join(entry.line() for entry in entries)


def ensure_swap_file(ctx: ModuleContext, cfg: dict[str, Any]) -> str | None:
    """The swap file's path once it exists (created now if needed), or ``None``."""
    from bootseed.late import swapfile
    from bootseed.late.execute import find_tool, run_captured

    filename = cfg.get("filename", DEFAULT_SWAP_FILE)
    size_value = cfg.get("size", 0)
    if not size_value or not filename:
        return None
    try:
        fstab_field(str(filename), "swap.filename")
        if not str(filename).startswith("/"):
            raise ValueError(f"swap.filename: {filename!r} is not an absolute path")
        host_path = ctx.target.real_path(filename)
        if host_path.exists() or host_path.is_symlink():
            if swapfile.is_swap_file(host_path) and not host_path.is_symlink():
                return str(filename)
            raise ValueError(f"swap.filename: {filename} exists and is not a swap file; "
                             "left alone")
        maxsize = (swapfile.parse_size(cfg["maxsize"], "swap.maxsize")
                   if cfg.get("maxsize") is not None else None)
        with ctx.target.open_dir(str(Path(filename).parent), create=True):
            pass
        if size_value == "auto":
            size = swapfile.suggested_size(swapfile.memory_total(),
                                           swapfile.free_bytes(host_path.parent), maxsize)
        else:
            size = swapfile.parse_size(size_value, "swap.size")
            if maxsize is not None:
                size = min(size, maxsize)
        size -= size % swapfile.MiB
        if size <= 0:
            ctx.log.info("swap: size works out to nothing; no swap file")
            return None
        tool = find_tool(ctx.target, "mkswap")
        if tool is None:
            raise ValueError("swap: the target has no mkswap command")
        swapfile.allocate(host_path, size)
        run = run_captured(ctx.target, [tool, str(filename)], timeout=COMMAND_TIMEOUT_S,
                           keep=2048)
        if run.returncode != 0:
            host_path.unlink(missing_ok=True)
            raise ValueError(f"swap: mkswap {filename} exited with status {run.returncode}: "
                             f"{' '.join(run.output.split())[-200:]}")
    except (OSError, ValueError) as exc:
        ctx.problems.append(Problem("swap", str(exc), Level.ERROR))
        return None
    ctx.log.info("created swap file %s (%d MiB)", filename, size // swapfile.MiB)
    return str(filename)


def activate(ctx: ModuleContext, entries: list[Entry], devices: Devices,
             fstab_changed: bool) -> None:
    """Mount the new lines and enable swap on the running system (absent devices were
    reported already and are not tried)."""
    from bootseed.early.blockdev import mount_at
    from bootseed.late.execute import run_captured

    def run(argv: list[str], what: str) -> None:
        result = run_captured(ctx.target, argv, timeout=COMMAND_TIMEOUT_S, keep=2048)
        if result.returncode != 0:
            ctx.problems.append(Problem(what, f"{' '.join(argv)} exited with status "
                                              f"{result.returncode}: "
                                              f"{' '.join(result.output.split())[-200:]}",
                                        Level.WARNING))

    if fstab_changed and Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        run(["systemctl", "daemon-reload"], "mounts")
    try:
        swaps = Path("/proc/swaps").read_text().split()
    except OSError:
        swaps = []
    for entry in entries:
        where = f"mounts: {entry.device}"
        if devices.present(entry.device) is False:
            continue
        if entry.is_swap:
            real = str(Path(entry.device).resolve()) if entry.device.startswith("/") else ""
            if entry.device not in swaps and real not in swaps:
                run(["swapon", entry.device], where)
        elif mount_at(entry.mountpoint) is None:
            run(["mount", entry.mountpoint], where)


def handle(ctx: ModuleContext) -> None:
    swap_cfg = ctx.cfg.get("swap") or {}
    swap_file = ensure_swap_file(ctx, swap_cfg) if isinstance(swap_cfg, dict) else None
    mapping = ctx.instance.metadata.get("block-device-mapping") or {}
    devices = Devices(ctx.target, mapping if isinstance(mapping, dict) else {})
    fstab = ctx.target.read_text(FSTAB, default="")
    result = plan(ctx.cfg, fstab, devices, swap_file)
    ctx.problems.extend(result.problems)
    for entry in result.entries:
        if entry.mountpoint.startswith("/"):
            with ctx.target.open_dir(entry.mountpoint, create=True):
                pass
    updated = rewrite(fstab, result.entries)
    changed = updated != fstab
    if changed:
        ctx.target.write(FSTAB, updated, mode=0o644)
        ctx.log.info("%s: %d bootseed line(s) written", FSTAB, len(result.entries))
    if ctx.target.is_host and result.entries:
        try:
            activate(ctx, result.entries, devices, changed)
        except subprocess.SubprocessError as exc:
            ctx.problems.append(Problem("mounts", f"activating: {exc}", Level.WARNING))


MODULE = ModuleSpec(
    name="mounts",
    stage=Stage.INIT,
    order=27,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
