"""``disk_setup``: partition tables and filesystems on extra disks (keys ``disk_setup``,
``fs_setup``, ``device_aliases``; cloud-init 22.4's meanings, with one firm rule).

The rule: **nothing that holds data is written without ``overwrite: true``**. A disk
that has a partition table, a filesystem or an md superblock is left alone by
``disk_setup``; a device that has a filesystem ``fs_setup`` did not ask for is left
alone by ``fs_setup`` (``replace_fs`` names one filesystem type that may be replaced).
Each refusal is a problem in the status saying what the device holds. A device in use
(mounted, swap, part of an array) is never written, not even with ``overwrite``.

Partitions are written with ``sfdisk`` (one script, whole table at once),
filesystems with ``mkfs.TYPE``/``mkswap``; all from the target.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import blockprobe
from bootseed.late.disknames import DiskNames
from bootseed.late.execute import TargetExecError, find_tool, run_captured, run_in_target
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.target import TargetRoot

MiB = 1024 * 1024
TOOL_TIMEOUT_S = 600.0
TABLES = {"mbr": "dos", "gpt": "gpt"}
DEFAULT_TYPE = {"dos": "83", "gpt": "8300"}
# sgdisk's short codes (what cloud-init's GPT layouts use) as GPT type GUIDs for sfdisk.
GPT_CODES = {
    "8300": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",  # Linux filesystem
    "8200": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",  # Linux swap
    "fd00": "A19D880F-05FC-4D3B-A006-743F0F84911E",  # Linux RAID
    "8e00": "E6D6D379-F507-44C2-A23C-238F2A3DF928",  # Linux LVM
    "ef00": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",  # EFI system
    "0700": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",  # Microsoft basic data
}
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                   r"[0-9A-Fa-f]{12}")
_MBR_CODE = re.compile(r"(0x)?[0-9A-Fa-f]{1,2}")

# filesystem -> (mkfs tool, label option, force option)
MKFS: dict[str, tuple[str, str | None, str | None]] = {
    "ext2": ("mkfs.ext2", "-L", "-F"),
    "ext3": ("mkfs.ext3", "-L", "-F"),
    "ext4": ("mkfs.ext4", "-L", "-F"),
    "xfs": ("mkfs.xfs", "-L", "-f"),
    "btrfs": ("mkfs.btrfs", "-L", "-f"),
    "swap": ("mkswap", "-L", "-f"),
    "vfat": ("mkfs.vfat", "-n", None),
    "fat": ("mkfs.vfat", "-n", None),
}

_STR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
SCHEMA: dict[str, Any] = {
    "properties": {
        "device_aliases": {"type": "object", "additionalProperties": {"type": "string"}},
        "disk_setup": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "table_type": {"enum": ["mbr", "gpt"]},
                    "layout": {"oneOf": [
                        {"type": "boolean"},
                        {"type": "array", "items": {"oneOf": [
                            {"type": "integer"},
                            {"type": "array", "minItems": 2, "maxItems": 2,
                             "items": {"oneOf": [{"type": "integer"}, {"type": "string"}]}},
                        ]}},
                    ]},
                    "overwrite": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
        },
        "fs_setup": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "filesystem": {"type": "string"},
                    "device": {"type": "string"},
                    "partition": {"oneOf": [{"enum": ["auto", "any", "none"]},
                                            {"type": "integer", "minimum": 1},
                                            {"type": "string", "pattern": "^[0-9]+$"}]},
                    "overwrite": {"type": "boolean"},
                    "replace_fs": {"type": "string"},
                    "extra_opts": _STR_LIST,
                    "cmd": _STR_LIST,
                },
                "additionalProperties": False,
            },
        },
    }
}


class SetupError(Exception):
    """One disk or filesystem entry could not be done (reported, the others go on)."""


class LeftAlone(SetupError):
    """The device holds data the entry may not replace; it was not touched."""


@dataclass(frozen=True)
class PartSpec:
    percent: int
    type_code: str  # as sfdisk takes it: an MBR hex code or a GPT GUID


def table_of(value: Any) -> str:
    if value is None:
        return "dos"
    if value not in TABLES:
        raise SetupError(f"table_type {value!r}: expected mbr or gpt")
    return TABLES[value]


def type_code(value: Any, table: str) -> str:
    text = str(value).strip()
    if table == "gpt":
        if _GUID.fullmatch(text):
            return text.upper()
        code = text.lower().removeprefix("0x")
        if len(code) <= 2:  # an MBR-style code in a GPT layout: 83 -> 8300, 82 -> 8200
            code = code.rjust(2, "0") + "00"
        if code in GPT_CODES:
            return GPT_CODES[code]
        raise SetupError(f"partition type {text!r}: not a GPT GUID or one of "
                         f"{', '.join(sorted(GPT_CODES))}")
    if _MBR_CODE.fullmatch(text):
        return text.lower().removeprefix("0x")
    raise SetupError(f"partition type {text!r}: expected an MBR hex code such as 83 or 82")


def parse_layout(layout: Any, table: str) -> tuple[PartSpec, ...]:
    """``true`` -> one partition over the whole disk; a list -> one partition per item
    (``percent`` or ``[percent, type]``); ``false``/missing -> no partitions."""
    if layout is True:
        return (PartSpec(100, type_code(DEFAULT_TYPE[table], table)),)
    if layout is None or layout is False:
        return ()
    if not isinstance(layout, list):
        raise SetupError("layout: expected true, false or a list of sizes")
    parts: list[PartSpec] = []
    for item in layout:
        percent, code = (item[0], item[1]) if isinstance(item, list) and len(item) == 2 \
            else (item, DEFAULT_TYPE[table])
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent <= 100:
            raise SetupError(f"layout item {item!r}: the size is a percentage from 1 to 100")
        parts.append(PartSpec(percent, type_code(code, table)))
    if sum(p.percent for p in parts) > 100:
        raise SetupError("layout: the sizes add up to more than 100%")
    return tuple(parts)


def sfdisk_script(table: str, parts: tuple[PartSpec, ...], disk_bytes: int) -> str:
    """The whole table as sfdisk input; a layout that adds up to 100% gives its last
    partition the rest of the disk (what alignment and GPT's backup header leave)."""
    lines = [f"label: {table}"]
    whole = sum(p.percent for p in parts) == 100
    for index, part in enumerate(parts):
        if whole and index == len(parts) - 1:
            lines.append(f"type={part.type_code}")
        else:
            size = disk_bytes * part.percent // 100 // MiB
            if size < 1:
                raise SetupError(f"partition {index + 1}: {part.percent}% of the disk is "
                                 "less than 1 MiB")
            lines.append(f"size={size}MiB, type={part.type_code}")
    return "\n".join(lines) + "\n"


def _tail(text: str) -> str:
    return " ".join(text.split())[-300:]


def _require(target: TargetRoot, name: str) -> str:
    tool = find_tool(target, name)
    if tool is None:
        raise SetupError(f"the target has no {name} command")
    return tool


def _run(target: TargetRoot, argv: list[str], stdin: bytes | None = None) -> None:
    run = run_captured(target, argv, timeout=TOOL_TIMEOUT_S, keep=4096, stdin=stdin)
    if run.returncode != 0:
        raise SetupError(f"{shlex.join(argv)} exited with status {run.returncode}: "
                         f"{_tail(run.output)}")


def settle(target: TargetRoot) -> None:
    """Let udev create the nodes of new partitions and record new filesystems."""
    tool = find_tool(target, "udevadm")
    if tool is not None:
        run_captured(target, [tool, "settle", "--timeout=30"], timeout=60.0, keep=512)


def _not_in_use(target: TargetRoot, device: str) -> str:
    name = blockprobe.kernel_name(target, device)
    if name is None:
        raise SetupError("not a block device here")
    used = blockprobe.users(name)
    if used:
        raise SetupError(f"in use ({', '.join(used)}); never written")
    return name


def _kernel_view(name: str) -> list[int]:
    return [number for number, _ in blockprobe.partitions(name)]


def partition_disk(target: TargetRoot, device: str, table: str,
                   parts: tuple[PartSpec, ...], overwrite: bool) -> str:
    """Write the layout on ``device`` unless it holds something (see module doc).
    Returns what was done, for the log; raises :class:`SetupError` for a refusal."""
    name = _not_in_use(target, device)
    content = blockprobe.probe(target, device)
    existing = blockprobe.partitions(name)
    if not overwrite and (not content.empty or existing):
        if content.pttype == table and len(existing) == len(parts):
            return f"already has a {table} table with {len(parts)} partition(s)"
        holds = content.describe() if not content.empty else f"{len(existing)} partition(s)"
        raise LeftAlone(f"holds {holds}; left alone (overwrite: true replaces it)")
    sfdisk = _require(target, "sfdisk")
    script = sfdisk_script(table, parts, blockprobe.size_bytes(name))
    if overwrite:
        wipefs = _require(target, "wipefs")
        for _, part in existing:
            _run(target, [wipefs, "--all", "--quiet", f"/dev/{part}"])
    _run(target, [sfdisk, "--quiet", "--wipe", "always", "--wipe-partitions", "always",
                  device], stdin=script.encode())
    settle(target)
    wanted = list(range(1, len(parts) + 1))
    partx = find_tool(target, "partx")
    if _kernel_view(name) != wanted and partx is not None:
        # sfdisk's re-read request is not always honoured (a loop device attached
        # without a partition scan); partx tells the kernel the new table instead.
        for action in ("--delete", "--add"):
            run_captured(target, [partx, action, device], timeout=60.0, keep=1024)
        settle(target)
    if _kernel_view(name) != wanted:
        raise SetupError(f"the kernel shows partitions {_kernel_view(name)} after sfdisk, "
                         f"not {wanted}")
    return f"{len(parts)} partition(s) in a new {table} table"


def setup_disk(ctx: ModuleContext, names: DiskNames, key: str, cfg: Any) -> None:
    where = f"disk_setup[{key}]"
    if not isinstance(cfg, Mapping):
        ctx.problems.append(Problem(where, "expected a mapping", Level.ERROR))
        return
    try:
        table = table_of(cfg.get("table_type"))
        parts = parse_layout(cfg.get("layout", False), table)
    except SetupError as exc:
        ctx.problems.append(Problem(where, str(exc), Level.ERROR))
        return
    if not parts:
        ctx.log.info("%s: no layout; nothing to do", where)
        return
    resolved = names.resolve(key)
    if resolved.device is None or not ctx.target.exists(resolved.device):
        ctx.problems.append(Problem(where, f"{resolved.shown}: no such disk here; skipped",
                                    Level.WARNING))
        return
    try:
        done = partition_disk(ctx.target, resolved.device, table, parts,
                              cfg.get("overwrite") is True)
    except (SetupError, blockprobe.ProbeError) as exc:
        ctx.problems.append(Problem(f"disk_setup[{resolved.shown}]", str(exc),
                                    Level.WARNING))
        return
    ctx.log.info("%s: %s", resolved.shown, done)


@dataclass(frozen=True)
class FsSpec:
    device: str  # as given (alias, ephemeral0, /dev/..), dotted partition removed
    partition: str  # "auto" | "any" | "none" | a number
    filesystem: str
    label: str | None
    overwrite: bool
    replace_fs: str | None
    extra_opts: tuple[str, ...]
    cmd: str | list[str] | None


def parse_fs(item: Any, names: DiskNames) -> FsSpec:
    if not isinstance(item, Mapping):
        raise SetupError("expected a mapping")
    device = item.get("device")
    filesystem = item.get("filesystem")
    if not isinstance(device, str) or not device:
        raise SetupError("device: required")
    if not isinstance(filesystem, str) or not filesystem:
        raise SetupError("filesystem: required")
    base, dotted = names.split_dotted(device)
    partition = str(item.get("partition", "any" if dotted is None else dotted))
    if partition not in ("auto", "any", "none") and not partition.isdigit():
        raise SetupError(f"partition {partition!r}: expected auto, any, none or a number")
    extra = item.get("extra_opts") or []
    extra_opts = tuple(shlex.split(extra) if isinstance(extra, str) else map(str, extra))
    cmd = item.get("cmd")
    if filesystem not in MKFS and cmd is None and not re.fullmatch(r"[a-z0-9]+", filesystem):
        raise SetupError(f"filesystem {filesystem!r}: not a filesystem type name")
    label = item.get("label")
    replace = item.get("replace_fs")
    return FsSpec(base, partition, filesystem, str(label) if label is not None else None,
                  item.get("overwrite") is True, str(replace) if replace else None,
                  extra_opts, cmd if isinstance(cmd, str | list) else None)


def _matches(content: blockprobe.Content, spec: FsSpec, by_label: bool) -> bool:
    if content.fstype != spec.filesystem and not (spec.filesystem == "fat"
                                                  and content.fstype == "vfat"):
        return False
    return not by_label or spec.label is None or content.label == spec.label


def choose_device(target: TargetRoot, disk: str, spec: FsSpec) -> tuple[str | None, str]:
    """The device ``fs_setup`` formats for ``spec`` on ``disk``, or ``None`` with the
    reason nothing is to be done (already there) — refusals raise :class:`SetupError`.

    ``none``: the disk itself. ``N``: its partition N. ``auto``: a partition (or the
    unpartitioned disk) already holding this filesystem type and label means done,
    else the first partition with nothing on it. ``any``: the same, but an existing
    filesystem of this type counts whatever its label."""
    name = blockprobe.kernel_name(target, disk)
    if name is None:
        raise SetupError("not a block device here")
    if spec.partition == "none":
        return disk, ""
    if spec.partition.isdigit():
        part = blockprobe.partition_name(name, int(spec.partition))
        if part is None:
            raise SetupError(f"has no partition {spec.partition}")
        return f"/dev/{part}", ""
    parts = [f"/dev/{part}" for _, part in blockprobe.partitions(name)]
    candidates = parts or [disk]
    contents = [blockprobe.probe(target, dev) for dev in candidates]
    for content in contents:
        if _matches(content, spec, by_label=spec.partition == "auto"):
            return None, f"{content.device} already holds {content.describe()}"
    for content in contents:
        if content.empty:
            return content.device, ""
    raise LeftAlone("no partition without a filesystem; left alone ("
                     + "; ".join(f"{c.device}: {c.describe()}" for c in contents) + ")")


def mkfs_argv(target: TargetRoot, spec: FsSpec, device: str, force: bool,
              whole_disk: bool) -> list[str]:
    if spec.cmd is not None:
        values = {"device": device, "filesystem": spec.filesystem, "label": spec.label or ""}
        try:
            if isinstance(spec.cmd, str):
                quoted = {k: shlex.quote(v) for k, v in values.items()}
                return ["/bin/sh", "-c", spec.cmd % quoted]
            return [str(part) % values for part in spec.cmd]
        except (KeyError, ValueError, TypeError) as exc:
            raise SetupError(f"cmd: bad %(name)s substitution: {exc}") from None
    tool_name, label_opt, force_opt = MKFS.get(spec.filesystem,
                                               (f"mkfs.{spec.filesystem}", None, None))
    argv = [_require(target, tool_name)]
    if spec.label is not None:
        if label_opt is None:
            raise SetupError(f"no label option known for {spec.filesystem}")
        argv += [label_opt, spec.label]
    if force and force_opt is not None:
        argv.append(force_opt)
    if whole_disk and tool_name == "mkfs.vfat":
        argv.append("-I")  # a whole disk with no partition table
    if spec.filesystem.startswith("ext"):
        argv.append("-q")
    return [*argv, *spec.extra_opts, device]


def make_filesystem(ctx: ModuleContext, disk: str, spec: FsSpec) -> str:
    """Format the device ``spec`` picks on ``disk``; returns what was done."""
    device, done = choose_device(ctx.target, disk, spec)
    if device is None:
        return done
    _not_in_use(ctx.target, device)
    content = blockprobe.probe(ctx.target, device)
    force = False
    if _matches(content, spec, by_label=True) and not spec.overwrite:
        return f"{device} already holds {content.describe()}"
    if not content.empty:
        replaceable = spec.replace_fs is not None and content.fstype == spec.replace_fs
        if not (spec.overwrite or replaceable):
            raise LeftAlone(f"{device} holds {content.describe()}; left alone "
                             "(overwrite: true or replace_fs replaces it)")
        force = True
    argv = mkfs_argv(ctx.target, spec, device, force, whole_disk=device == disk)
    if spec.cmd is not None:
        try:
            run_in_target(ctx.target, argv, what=f"fs_setup cmd for {device}")
        except TargetExecError as exc:
            raise SetupError(str(exc)) from None
    else:
        _run(ctx.target, argv)
    settle(ctx.target)
    return f"made {spec.filesystem} on {device}" + (f" labelled {spec.label!r}"
                                                    if spec.label else "")


def setup_fs(ctx: ModuleContext, names: DiskNames, index: int, item: Any) -> None:
    where = f"fs_setup[{index}]"
    try:
        spec = parse_fs(item, names)
    except SetupError as exc:
        ctx.problems.append(Problem(where, str(exc), Level.ERROR))
        return
    resolved = names.resolve(spec.device)
    if resolved.device is None or not ctx.target.exists(resolved.device):
        ctx.problems.append(Problem(where, f"{resolved.shown}: no such device here; skipped",
                                    Level.WARNING))
        return
    try:
        done = make_filesystem(ctx, resolved.device, spec)
    except (SetupError, blockprobe.ProbeError) as exc:
        ctx.problems.append(Problem(f"{where} ({resolved.shown})", str(exc), Level.WARNING))
        return
    ctx.log.info("%s: %s", where, done)


def handle(ctx: ModuleContext) -> None:
    aliases = ctx.cfg.get("device_aliases") or {}
    mapping = ctx.instance.metadata.get("block-device-mapping") or {}
    names = DiskNames(ctx.target, aliases if isinstance(aliases, Mapping) else {},
                      mapping if isinstance(mapping, Mapping) else {})
    disks = ctx.cfg.get("disk_setup") or {}
    if isinstance(disks, Mapping):
        for key, cfg in disks.items():
            setup_disk(ctx, names, str(key), cfg)
    filesystems = ctx.cfg.get("fs_setup") or []
    if isinstance(filesystems, list):
        for index, item in enumerate(filesystems):
            setup_fs(ctx, names, index, item)


MODULE = ModuleSpec(
    name="disk_setup",
    stage=Stage.INIT,
    order=25,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
)
