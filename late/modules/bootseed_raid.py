"""``bootseed_raid``: md RAID 0/1 arrays over named disks or all ephemeral disks, with a
filesystem and a mount point (a bootseed key; cloud-init has none, Ignition's
``storage.raid`` is the model).

Every boot, for each array: a running array is used as it is; members carrying this
array's md superblock are assembled (never re-created); blank members on an instance
that never made the array are created into a new one (``mdadm --create --run``) and
formatted. A missing member is reported by name and never leads to a new degraded
array; a member holding anything else, or an instance that made the array before and
now finds its members blank, is reported and nothing is written. The array's
``ARRAY`` line goes to ``/etc/mdadm/mdadm.conf`` and its mount to ``/etc/fstab``
(marked ``# bootseed raid``, with ``nofail``).
"""

from __future__ import annotations

import enum
import json
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.contract.problems import Level, Problem
from bootseed.late import blockprobe
from bootseed.late.disknames import DiskNames, Resolved
from bootseed.late.execute import find_tool, run_captured
from bootseed.late.fstabmark import FSTAB
from bootseed.late.linegrammar import LineGrammarError, fstab_field
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.modules.disk_setup import MKFS
from bootseed.late.modules.mounts import DEFAULT_OPTIONS
from bootseed.late.target import TargetRoot

MDADM_CONF = "/etc/mdadm/mdadm.conf"
FSTAB_MARK = "# bootseed raid"
CONF_MARK = "# bootseed raid"
STATE_FOLDER = "raid"
TOOL_TIMEOUT_S = 600.0
FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "btrfs")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")

SCHEMA: dict[str, Any] = {
    "properties": {
        "bootseed_raid": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": _NAME.pattern},
                    "level": {"enum": [0, 1, "0", "1", "raid0", "raid1"]},
                    "devices": {"oneOf": [
                        {"const": "ephemeral"},
                        {"type": "array", "items": {"type": "string"}, "minItems": 2},
                    ]},
                    "filesystem": {"oneOf": [{"enum": list(FILESYSTEMS)}, {"type": "null"}]},
                    "label": {"type": "string"},
                    "mount": {"type": "string"},
                    "mount_options": {"type": "string"},
                },
                "required": ["name", "level", "devices"],
                "additionalProperties": False,
            },
        },
    }
}


class RaidError(Exception):
    """One array entry cannot be done; reported, the others go on."""


@dataclass(frozen=True)
class RaidSpec:
    name: str
    level: int
    devices: tuple[str, ...]  # names as configured (``ephemeral`` expanded)
    filesystem: str | None
    label: str | None
    mount: str | None
    mount_options: str

    @property
    def node(self) -> str:
        return f"/dev/md/{self.name}"


def parse_spec(item: Any, names: DiskNames) -> RaidSpec:
    if not isinstance(item, Mapping):
        raise RaidError("expected a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RaidError("name: 1 to 32 of A-Z a-z 0-9 _ . - (not starting with . or -)")
    level_text = str(item.get("level", "")).removeprefix("raid")
    if level_text not in ("0", "1"):
        raise RaidError(f"level {item.get('level')!r}: 0 or 1")
    devices = item.get("devices")
    if devices == "ephemeral":
        members = tuple(names.ephemeral())
        if len(members) < 2:
            raise RaidError("devices: ephemeral: the block-device-mapping names "
                            f"{len(members)} ephemeral disk(s); an array needs 2 or more")
    elif isinstance(devices, list) and len(devices) >= 2 and all(
            isinstance(d, str) and d for d in devices):
        members = tuple(devices)
    else:
        raise RaidError("devices: \"ephemeral\" or a list of 2 or more device names")
    if len(set(members)) != len(members):
        raise RaidError("devices: a device is named twice")
    filesystem = item.get("filesystem", "ext4")
    if filesystem is not None and filesystem not in FILESYSTEMS:
        raise RaidError(f"filesystem {filesystem!r}: one of {', '.join(FILESYSTEMS)} or null")
    mount = item.get("mount")
    if mount is not None and (not isinstance(mount, str) or not mount.startswith("/")):
        raise RaidError(f"mount {mount!r}: an absolute path")
    if mount is not None and filesystem is None:
        raise RaidError("mount needs a filesystem")
    options = str(item.get("mount_options") or DEFAULT_OPTIONS)
    try:
        for value, what in ((mount, "mount"), (options, "mount_options"),
                            (item.get("label"), "label")):
            if value is not None:
                fstab_field(str(value), what)
    except LineGrammarError as exc:
        raise RaidError(str(exc)) from None
    if "nofail" not in options.split(","):
        options += ",nofail"
    label = item.get("label")
    return RaidSpec(name, int(level_text), members, filesystem,
                    str(label) if label is not None else None, mount, options)


@dataclass(frozen=True)
class Member:
    """One configured member as found on this boot."""

    resolved: Resolved
    content: blockprobe.Content | None  # None: the device is not here
    holder: str | None = None  # the md device (kernel name) using it, if any
    holder_running: bool = False

    @property
    def missing(self) -> bool:
        return self.content is None


def carries(member: Member, name: str) -> bool:
    """Whether ``member`` has an md superblock of the array called ``name`` (mdadm stores
    ``HOMEHOST:NAME`` or ``NAME``)."""
    content = member.content
    if content is None or content.fstype != "linux_raid_member" or content.label is None:
        return False
    return content.label == name or content.label.rpartition(":")[2] == name


class Step(enum.Enum):
    RUNNING = "running"
    ASSEMBLE = "assemble"
    CREATE = "create"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    step: Step
    message: str = ""  # why (for REFUSE, and for a degraded RUNNING/ASSEMBLE)
    running: str | None = None  # for RUNNING: the md kernel name
    stop_first: tuple[str, ...] = ()  # inactive md devices holding members (ASSEMBLE)


def decide(spec: RaidSpec, members: Sequence[Member], created_here: bool) -> Decision:
    """What to do with one array this boot; never a step that writes over data."""
    missing = [m.resolved.shown for m in members if m.missing]
    gone = (f"member(s) {', '.join(missing)} missing" if missing else "")
    running = {m.holder for m in members if m.holder and m.holder_running}
    if running:
        if len(running) > 1:
            return Decision(Step.REFUSE, "members belong to different running arrays "
                                         f"({', '.join(sorted(running))})")
        return Decision(Step.RUNNING, gone + ("; the array runs degraded" if gone else ""),
                        running=running.pop())
    ours = [m for m in members if carries(m, spec.name)]
    inactive = tuple(sorted({m.holder for m in members if m.holder and not m.holder_running}))
    if ours:
        if missing and spec.level == 0:
            return Decision(Step.REFUSE, f"{gone}; a RAID0 array cannot run without them "
                                         "(not assembled, never re-created)")
        strangers = [m.resolved.shown for m in members
                     if not m.missing and not carries(m, spec.name)]
        if strangers:
            return Decision(Step.REFUSE, f"{', '.join(strangers)} not part of this array; "
                                         "not assembled")
        return Decision(Step.ASSEMBLE, gone + ("; assembled degraded" if gone else ""),
                        stop_first=inactive)
    if created_here:
        return Decision(Step.REFUSE, "this instance made the array on an earlier boot and "
                                     "its members no longer carry it; not re-created"
                        + (f" ({gone})" if gone else ""))
    if missing:
        return Decision(Step.REFUSE, f"{gone}; a new array is not created degraded")
    used = [f"{m.resolved.shown} (used by {m.holder})" for m in members if m.holder]
    if used:
        return Decision(Step.REFUSE, f"{', '.join(used)}; not created")
    full = [f"{m.resolved.shown} holds {m.content.describe()}" for m in members
            if m.content is not None and not m.content.empty]
    if full:
        return Decision(Step.REFUSE, f"{'; '.join(full)}; left alone, array not created")
    return Decision(Step.CREATE)


def create_argv(mdadm: str, spec: RaidSpec, devices: Sequence[str]) -> list[str]:
    return [mdadm, "--create", spec.node, "--run", "--metadata=1.2",
            f"--level={spec.level}", f"--raid-devices={len(devices)}",
            f"--name={spec.name}", *devices]


def assemble_argv(mdadm: str, spec: RaidSpec, devices: Sequence[str],
                  degraded: bool) -> list[str]:
    return [mdadm, "--assemble", spec.node, *(["--run"] if degraded else []), *devices]


def mkfs_argv(tool: str, spec: RaidSpec, device: str) -> list[str]:
    argv = [tool]
    if spec.label is not None:
        argv += ["-L", spec.label]
    if spec.filesystem is not None and spec.filesystem.startswith("ext"):
        argv.append("-q")
    return [*argv, device]


def conf_with(conf: str, name: str, array_line: str) -> str:
    """``mdadm.conf`` with this array's marked ``ARRAY`` line replaced by ``array_line``;
    other lines untouched."""
    marker = f"{CONF_MARK} {name}"
    lines = conf.splitlines()
    kept: list[str] = []
    skip_next = False
    for line in lines:
        if skip_next:
            skip_next = False
            if line.startswith("ARRAY "):
                continue
        if line == marker:
            skip_next = True
            continue
        kept.append(line)
    return "\n".join([*kept, marker, array_line]) + "\n"


def fstab_with(fstab: str, mount: str, line: str) -> str:
    """``fstab`` with the marked line for ``mount`` replaced by ``line``."""
    kept = [row for row in fstab.splitlines()
            if not (row.endswith(FSTAB_MARK) and row.split()[1:2] == [mount])]
    return "\n".join([*kept, line]) + "\n"


class Raid:
    """The commands of one array on one target."""

    def __init__(self, ctx: ModuleContext, spec: RaidSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.where = spec.name  # the runner puts the module name in front

    @property
    def target(self) -> TargetRoot:
        return self.ctx.target

    def run(self, argv: list[str]) -> str:
        result = run_captured(self.target, argv, timeout=TOOL_TIMEOUT_S, keep=8192)
        if result.returncode != 0:
            raise RaidError(f"{shlex.join(argv)} exited with status {result.returncode}: "
                            f"{' '.join(result.output.split())[-300:]}")
        return result.output

    def tool(self, name: str) -> str:
        found = find_tool(self.target, name)
        if found is None:
            raise RaidError(f"the target has no {name} command")
        return found

    def member(self, resolved: Resolved) -> Member:
        if resolved.device is None or not self.target.exists(resolved.device):
            return Member(resolved, None)
        name = blockprobe.kernel_name(self.target, resolved.device)
        if name is None:
            raise RaidError(f"{resolved.shown}: not a block device")
        content = blockprobe.probe(self.target, resolved.device)
        if blockprobe.partitions(name) and content.empty:
            content = blockprobe.Content(resolved.device, pttype="unknown")
        md = [h for h in blockprobe.holders(name) if h.startswith("md")]
        holder = md[0] if md else None
        return Member(resolved, content, holder, holder is not None and _running(holder))

    def state_path(self) -> Path:
        return self.ctx.instance_dir / STATE_FOLDER / f"{self.spec.name}.json"

    def created_here(self) -> bool:
        return self.state_path().exists()

    def record(self, uuid: str) -> None:
        path = self.state_path()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"name": self.spec.name, "md_uuid": uuid}) + "\n")

    def apply(self, names: DiskNames) -> None:
        members = [self.member(names.resolve(device)) for device in self.spec.devices]
        decision = decide(self.spec, members, self.created_here())
        devices = [m.resolved.device for m in members if not m.missing and m.resolved.device]
        if decision.step is Step.REFUSE:
            raise RaidError(decision.message)
        if decision.message:
            self.ctx.problems.append(Problem(self.where, decision.message, Level.WARNING))
        mdadm = self.tool("mdadm")
        if decision.step is Step.RUNNING and decision.running is not None:
            node = f"/dev/{decision.running}"
            self.ctx.log.info("%s: running as %s", self.where, node)
        elif decision.step is Step.ASSEMBLE:
            for inactive in decision.stop_first:
                self.run([mdadm, "--stop", f"/dev/{inactive}"])
            self.run(assemble_argv(mdadm, self.spec, devices, degraded=bool(decision.message)))
            node = self.spec.node
            self.ctx.log.info("%s: assembled from %s", self.where, ", ".join(devices))
        else:
            self.run(create_argv(mdadm, self.spec, devices))
            node = self.spec.node
            self.record(_detail(self, mdadm, node).get("MD_UUID", ""))
            if self.spec.filesystem is not None:
                tool = self.tool(MKFS[self.spec.filesystem][0])
                self.run(mkfs_argv(tool, self.spec, node))
            self.ctx.log.info("%s: created RAID%d from %s", self.where, self.spec.level,
                              ", ".join(devices))
        self.write_conf(mdadm, node)
        if self.spec.mount is not None:
            self.write_mount(node)

    def write_conf(self, mdadm: str, node: str) -> None:
        detail = _detail(self, mdadm, node)
        uuid = detail.get("MD_UUID")
        if not uuid:
            raise RaidError(f"mdadm --detail {node} gave no UUID")
        line = (f"ARRAY {self.spec.node} metadata=1.2 UUID={uuid}"
                + (f" name={detail['MD_NAME']}" if detail.get("MD_NAME") else ""))
        conf = self.target.read_text(MDADM_CONF, default="")
        updated = conf_with(conf, self.spec.name, line)
        if updated != conf:
            with self.target.open_dir("/etc/mdadm", create=True):
                pass
            self.target.write(MDADM_CONF, updated, mode=0o644)

    def write_mount(self, node: str) -> None:
        mount = self.spec.mount
        assert mount is not None and self.spec.filesystem is not None
        content = blockprobe.probe(self.target, node)
        if content.fstype != self.spec.filesystem or not content.uuid:
            raise RaidError(f"{node} holds {content.describe()}, not {self.spec.filesystem}; "
                            "not mounted")
        line = (f"UUID={content.uuid} {mount} {self.spec.filesystem} "
                f"{self.spec.mount_options} 0 2 {FSTAB_MARK}")
        fstab = self.target.read_text(FSTAB, default="")
        updated = fstab_with(fstab, mount, line)
        with self.target.open_dir(mount, create=True):
            pass
        if updated != fstab:
            self.target.write(FSTAB, updated, mode=0o644)
        if self.target.is_host:
            self.mount_now(mount, reload=updated != fstab)

    def mount_now(self, mount: str, reload: bool) -> None:
        from bootseed.early.blockdev import mount_at

        if reload and Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
            run_captured(self.target, ["systemctl", "daemon-reload"], timeout=120.0, keep=512)
        if mount_at(mount) is None:
            self.run(["mount", mount])


def _running(md: str) -> bool:
    try:
        state = Path(f"/sys/class/block/{md}/md/array_state").read_text().strip()
    except OSError:
        return False
    return state not in ("clear", "inactive")


def _detail(raid: Raid, mdadm: str, node: str) -> dict[str, str]:
    output = raid.run([mdadm, "--detail", "--export", node])
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def handle(ctx: ModuleContext) -> None:
    items = ctx.cfg.get("bootseed_raid") or []
    if not isinstance(items, list):
        return
    aliases = ctx.cfg.get("device_aliases") or {}
    mapping = ctx.instance.metadata.get("block-device-mapping") or {}
    names = DiskNames(ctx.target, aliases if isinstance(aliases, Mapping) else {},
                      mapping if isinstance(mapping, Mapping) else {})
    for index, item in enumerate(items):
        where = f"bootseed_raid[{index}]"
        try:
            spec = parse_spec(item, names)
        except RaidError as exc:
            ctx.problems.append(Problem(where, str(exc), Level.ERROR))
            continue
        raid = Raid(ctx, spec)
        try:
            raid.apply(names)
        except (RaidError, blockprobe.ProbeError, OSError) as exc:
            ctx.problems.append(Problem(raid.where, str(exc), Level.ERROR))


MODULE = ModuleSpec(
    name="bootseed_raid",
    stage=Stage.INIT,
    order=26,
    frequency=Frequency.PER_BOOT,
    schema=SCHEMA,
    handle=handle,
)
