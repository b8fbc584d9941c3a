"""``python3 -m bootseed.early rootswitch``: decide what the root is, after it is mounted.

Run by the initramfs-tools ``local-bottom`` script with the real root mounted on
``${rootmnt}``. In order:

1. **rescue** — a volume labelled ``RESCUE`` / ``UEC-rescue`` / ``RESCUE_VOL`` (or the
   ``bootseed.rescue=`` list) without a ``DONE``/``finished``/``etc/rescuevol-ignore``
   marker becomes the root; the original root goes to ``/media/original-root``. A rescue
   boot does nothing else (no volume code runs on a machine being repaired).
2. **volumes** — ``bootseed.root=`` forces a take-over; otherwise every other filesystem
   is mounted read-only, one at a time, for ``bootseed-volume.yaml`` (``action: root``
   takes over the root; ``mount`` and ``exec`` are recorded for the late agent).
3. **overlay** — ``bootseed.overlay=`` (alias ``bootseed.aufs=``/``aufs=``) or the image
   config puts an overlayfs over the final root.

Image switches come from ``etc/bootseed/bootseed.cfg`` (and ``bootseed.cfg.d/*.cfg``) on
the root the initramfs mounted: ``volumes: {consume, actions, timeout}`` and
``overlay:``. The command line wins. Every decision and error is appended to
``/run/bootseed/seed.json`` (``actions``/``problems``), or to ``rootswitch.json`` beside
it when the premount stage wrote no seed cache, and printed on the console. Always exits
0 apart from usage errors: the boot goes on with whatever root is in place, which after
any failure is the original one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bootseed.contract.actions import Action, RootSwitch, TakeOver, VolumeRef
from bootseed.contract.cli import CliError, Verb
from bootseed.contract.problems import Problem
from bootseed.contract.seedcache import (
    DEFAULT_SEED_DIR,
    RECORDED_LEVEL,
    SideRecord,
    StepTiming,
)

DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 600.0
CONFIG_PATH = "etc/bootseed/bootseed.cfg"
CONFIG_DIR = "etc/bootseed/bootseed.cfg.d"
CONFIG_KEYS = ("volumes", "overlay")

if TYPE_CHECKING:
    from bootseed.contract.cmdline import RootSwitchParams


@dataclass
class ImageConfig:
    consume: bool = True
    actions: tuple[str, ...] = ("root", "mount", "exec")
    timeout: float = DEFAULT_TIMEOUT_S
    overlay: str | None = None


@dataclass
class Options:
    rootmnt: str = "/root"
    init: str = "/sbin/init"
    cmdline: str | None = None
    proc: str = "/proc"
    seed_dir: str = DEFAULT_SEED_DIR
    stage_dir: str = "/media"
    mount_base: str = "/run"
    # Test hook: consider only these block devices (the host's own disks stay out).
    devices: list[str] | None = None
    kmsg: bool = False


@dataclass
class Report:
    decision: str = "original root"
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    timings: list[StepTiming] = field(default_factory=list)
    root: str | None = None

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, RECORDED_LEVEL))

    def step(self, name: str, started: float, outcome: str = "ok") -> None:
        self.timings.append(StepTiming(f"early.rootswitch.{name}",
                                       round((time.monotonic() - started) * 1000.0, 1),
                                       outcome))


def read_image_config(root: Path, report: Report) -> ImageConfig:
    """``volumes:`` and ``overlay:`` from the image's bootseed.cfg and cfg.d files.

    Only those top-level blocks are parsed (with the early stage's small YAML reader),
    so other keys in the file, which the late agent owns, cannot break the boot.
    """
    config = ImageConfig()
    files = [root / CONFIG_PATH, *sorted((root / CONFIG_DIR).glob("*.cfg"))]
    merged: dict[str, Any] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            continue
        except (OSError, UnicodeDecodeError) as exc:
            report.problem(f"/{path.relative_to(root)}", f"unreadable: {exc}")
            continue
        for key, (line, value) in _top_level_blocks(text, CONFIG_KEYS, path, root,
                                                    report).items():
            if key == "volumes" and isinstance(value, dict) and isinstance(
                    merged.get("volumes"), dict):
                merged["volumes"] = {**merged["volumes"], **value}
            else:
                merged[key] = value
            merged[f"{key}@"] = f"/{path.relative_to(root)} line {line}"
    _apply_volumes(config, merged, report)
    overlay = merged.get("overlay")
    if overlay is not None and overlay is not False:
        if isinstance(overlay, str):
            config.overlay = overlay
        else:
            report.problem(merged["overlay@"], "overlay: expected tmpfs, LABEL=NAME[,mkfs], "
                           "UUID=.. or /dev/..; ignored")
    return config


def _top_level_blocks(text: str, keys: tuple[str, ...], path: Path, root: Path,
                      report: Report) -> dict[str, tuple[int, Any]]:
    from bootseed.early.sources.metadata import MetadataError, parse_simple_yaml

    lines = text.splitlines()
    found: dict[str, tuple[int, Any]] = {}
    for i, line in enumerate(lines):
        key = next((k for k in keys if line.startswith(f"{k}:")), None)
        if key is None:
            continue
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
            end += 1
        try:
            doc = parse_simple_yaml(_FLOW_WORDS.sub(_quote_flow, "\n".join(lines[i:end])))
        except MetadataError as exc:
            report.problem(f"/{path.relative_to(root)} line {i + exc.line}",
                           f"{key}: {str(exc).split(': ', 1)[-1]}; ignored"
                           + ("; volume consumption off until fixed" if key == "volumes"
                              else ""))
            if key == "volumes":
                found[key] = (i + 1, {"consume": False})
            continue
        if isinstance(doc, dict):
            found[key] = (i + 1, doc.get(key))
    return found


# ``[mount, exec]``: a flow list of plain words, which the small YAML reader only takes
# in its JSON spelling.
_FLOW_WORDS = re.compile(r"\[([A-Za-z0-9_ ,-]*)\]")


def _quote_flow(match: re.Match[str]) -> str:
    return json.dumps([word.strip() for word in match.group(1).split(",") if word.strip()])


def _apply_volumes(config: ImageConfig, merged: dict[str, Any], report: Report) -> None:
    from bootseed.early.volumes import VOLUME_ACTIONS

    value = merged.get("volumes")
    if value is None:
        return
    where = merged["volumes@"]
    if not isinstance(value, dict):
        report.problem(where, "volumes: expected a mapping (consume, actions, timeout)")
        return
    for key in sorted(set(value) - {"consume", "actions", "timeout"}):
        report.problem(where, f"volumes: unknown key {key!r}; ignored")
    consume = value.get("consume", True)
    if isinstance(consume, bool):
        config.consume = consume
    else:
        report.problem(where, "volumes.consume: expected true or false; kept true")
    actions = value.get("actions", list(VOLUME_ACTIONS))
    if isinstance(actions, list) and all(a in VOLUME_ACTIONS for a in actions):
        config.actions = tuple(actions)
    else:
        report.problem(where, f"volumes.actions: expected a list of {', '.join(VOLUME_ACTIONS)}")
        config.actions = ()
    timeout = value.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) \
            and 0 < timeout <= MAX_TIMEOUT_S:
        config.timeout = float(timeout)
    else:
        report.problem(where, f"volumes.timeout: expected seconds above 0 and at most "
                       f"{MAX_TIMEOUT_S:g}; kept {DEFAULT_TIMEOUT_S:g}")


def run(options: Options) -> Report:
    report = Report()
    started = time.monotonic()
    try:
        _run(options, report)
    except Exception as exc:  # the boot goes on whatever happens here
        report.problem("early rootswitch", f"{type(exc).__name__}: {exc}")
        report.step("total", started, "error")
    else:
        report.step("total", started)
    report.actions.insert(0, RootSwitch(report.decision, report.root))
    _record(report, options)
    for problem in report.problems:
        _console(f"bootseed-root: error: {problem.where}: {problem.message}", options.kmsg)
    _console(f"bootseed-root: {report.decision}", options.kmsg)
    return report


def _run(options: Options, report: Report) -> None:
    from bootseed.contract.cmdline import parse as parse_cmdline
    from bootseed.early import blockdev, overlay, rescue, takeover
    from bootseed.early.budget import Budget

    cmdline = options.cmdline
    if cmdline is None:
        cmdline = (Path(options.proc) / "cmdline").read_text(encoding="utf-8",
                                                             errors="replace")
    kernel = parse_cmdline(cmdline)
    for bad in kernel.rootswitch.problems:
        report.problem(bad.where, bad.message)
    if not kernel.early.enabled:
        report.decision = f"{kernel.disabled_by or 'bootseed.early=off'}: nothing done"
        return
    params = kernel.rootswitch
    init = params.init or options.init
    config = read_image_config(Path(options.rootmnt), report)
    budget = Budget(config.timeout)
    original = takeover.current_root(options.rootmnt)
    report.root = original.source
    mounted = frozenset(os.makedev(*entry.majmin) for entry in blockdev.mount_table())
    t = time.monotonic()
    candidates = [v for v in blockdev.scan(options.devices) if v.rdev not in mounted]
    report.step("scan", t)

    labels = rescue.parse_labels(params.rescue)
    if labels:
        t = time.monotonic()
        choice = rescue.choose(candidates, labels, budget, mounted, options.mount_base)
        report.step("rescue", t, "used" if choice.volume else "none")
        for problem in choice.problems:
            report.problem("rescue", problem)
        report.actions.extend(choice.skipped)
        if choice.volume is not None:
            try:
                record = rescue.boot_rescue(options.rootmnt, choice.volume, options.stage_dir,
                                            init)
            except takeover.RootSwitchError as exc:
                _failed(report, "rescue", choice.volume.describe(), exc)
            else:
                report.actions.append(record)
                for note in record.notes:
                    report.problem("rescue", note)
                report.decision = (f"rescue boot from {choice.volume.describe()}; original "
                                   f"root at {rescue.ORIGINAL_ROOT}")
                report.root = choice.volume.path
                return

    new_root, reason = _volumes(options, params, config, candidates, budget, mounted, report)
    if new_root is not None:
        t = time.monotonic()
        try:
            takeover.replace_root(options.rootmnt, new_root, options.stage_dir, init=init)
        except takeover.RootSwitchError as exc:
            report.step("takeover", t, "error")
            _failed(report, "takeover", new_root.describe(), exc)
        else:
            report.step("takeover", t)
            report.actions.append(TakeOver(VolumeRef.from_dict(new_root.as_dict()), reason,
                                           original.source))
            report.decision = f"root taken over by {new_root.describe()} ({reason})"
            report.root = new_root.path

    overlay_value = params.overlay if params.overlay is not None else config.overlay
    where = (f"kernel command line: {params.overlay_param}" if params.overlay is not None
             else "image config: overlay")
    try:
        request = overlay.parse_request(overlay_value, where) if overlay_value else None
    except ValueError as exc:
        report.problem(where, str(exc))
        request = None
    if request is not None:
        t = time.monotonic()
        try:
            layered = overlay.apply(options.rootmnt, request, options.stage_dir, budget,
                                    devices=options.devices, init=init)
        except takeover.RootSwitchError as exc:
            report.step("overlay", t, "error")
            _failed(report, "overlay", request.upper, exc)
        else:
            report.step("overlay", t)
            report.actions.append(layered)
            report.decision += f"; overlay root, writes to {request.upper}"


def _volumes(options: Options, params: RootSwitchParams, config: ImageConfig,
             candidates: list[Any], budget: Any, mounted: frozenset[int],
             report: Report) -> tuple[Any, str]:
    from bootseed.early import blockdev, volumes

    new_root = None
    reason = ""
    if params.root is not None:
        t = time.monotonic()
        try:
            new_root = blockdev.wait_for(params.root, budget, options.devices, mounted)
            reason = f"bootseed.root={params.root}"
            report.step("find-root", t)
        except blockdev.BlockDevError as exc:
            report.step("find-root", t, "error")
            report.problem("takeover", f"bootseed.root: {exc}; booting the original root")
    consume = params.consume if params.consume is not None else config.consume
    if not consume:
        return new_root, reason
    t = time.monotonic()
    others = [v for v in candidates if new_root is None or v.path != new_root.path]
    result = volumes.scan_volume_files(others, budget, config.actions, options.mount_base)
    report.step("volumes", t, "timeout" if result.timed_out else "ok")
    for problem in result.problems:
        report.problem("volumes", problem)
    roots = [spec.volume for spec in result.specs if spec.action == "root"]
    if len(roots) > 1:
        report.problem("volumes", "several volumes ask to become the root ("
                       + ", ".join(v.describe() for v in roots) + "); none used")
    elif roots and new_root is not None:
        report.problem("volumes", f"{roots[0].describe()} asks to become the root; "
                       f"bootseed.root= wins")
    elif roots:
        new_root, reason = roots[0], "bootseed-volume.yaml action: root"
    for spec in result.specs:
        if spec.action != "root":
            report.actions.append(spec.as_action())
    return new_root, reason


def _failed(report: Report, what: str, subject: str, exc: Any) -> None:
    report.problem(what, f"{subject}: {exc}; original root kept")
    for undo_problem in exc.undo_problems:
        report.problem(what, undo_problem)


def _record(report: Report, options: Options) -> None:
    from bootseed.contract.seedcache import (
        SeedCacheError,
        read_seed_cache,
        write_seed_cache,
        write_side_record,
    )

    try:
        seed = read_seed_cache(options.seed_dir)
    except SeedCacheError as exc:
        report.problem("early rootswitch", f"seed cache unusable, recorded beside it: {exc}")
        seed = None
    try:
        if seed is not None:
            seed.actions.extend(report.actions)
            seed.problems.extend(report.problems)
            seed.timings.extend(report.timings)
            write_seed_cache(seed, options.seed_dir)
            return
        # No seed.json: writing one would tell the late agent there is no seed at all.
        write_side_record(_side(report), options.seed_dir)
    except OSError as exc:
        _console(f"bootseed-root: cannot record in {options.seed_dir}: {exc}", options.kmsg)


def _side(report: Report) -> SideRecord:
    return SideRecord(actions=list(report.actions), problems=list(report.problems),
                      timings=list(report.timings))


def side_record(report: Report) -> dict[str, Any]:
    return _side(report).to_dict()


def _console(line: str, kmsg: bool) -> None:
    print(line, file=sys.stderr, flush=True)
    if kmsg:
        try:
            with open("/dev/kmsg", "w", encoding="utf-8") as handle:
                handle.write(f"<5>{line}\n")
        except OSError:
            pass


HELP = "rescue boot, root take-over and overlay root after the root is mounted"
DESCRIPTION = ("Rescue boot, root take-over and overlay root, decided after the root is mounted "
               "on ROOTMNT (initramfs-tools local-bottom). Exits 0 even when it fails: the "
               "original root is then left in place.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rootmnt", default="/root", help="where the root is mounted")
    parser.add_argument("--init", default="/sbin/init",
                        help="init the new root must hold (init= on the command line wins)")
    parser.add_argument("--cmdline", help="kernel command line instead of /proc/cmdline")
    parser.add_argument("--seed-dir", default=DEFAULT_SEED_DIR, help="seed cache directory")
    parser.add_argument("--stage-dir", default="/media",
                        help="initramfs directory for mounts while switching")
    parser.add_argument("--mount-base", default="/run", help=argparse.SUPPRESS)
    parser.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)
    parser.add_argument("--device", action="append", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kmsg", action="store_true", help="also log to /dev/kmsg")
    parser.add_argument("--json", action="store_true", help="print the decisions as JSON")


def run_command(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.rootmnt):
        raise CliError(f"--rootmnt {args.rootmnt}: not a directory", exit_code=2)
    report = run(Options(rootmnt=args.rootmnt, init=args.init, cmdline=args.cmdline,
                         proc=args.proc, seed_dir=args.seed_dir, stage_dir=args.stage_dir,
                         mount_base=args.mount_base, devices=args.device, kmsg=args.kmsg))
    if args.json:
        print(json.dumps({"decision": report.decision, "root": report.root,
                          **side_record(report)}, indent=2, sort_keys=True))
    return 0


VERB = Verb(name="rootswitch", help=HELP, description=DESCRIPTION, add_arguments=add_arguments,
            run=run_command)
