"""Find the seed: which sources to ask, in which order, within one time budget.

Order: a seed URL from the command line, seed directories, discs by label
(``cidata``, ``config-2``, then ISO9660 discs holding ``ovf-env.xml``), then
the EC2 metadata service, which is only asked when the command line names it
or DMI says this is EC2 — off-cloud nothing is probed over the network.
``cloud-config-url=`` is added on top as vendor-data. ``discover`` never
raises: every failure becomes a problem in the returned :class:`Seed`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bootseed.contract import cmdline
from bootseed.contract.cmdline import SeedParams
from bootseed.contract.seedcache import RECORDED_LEVEL, Seed, StepTiming
from bootseed.early import http
from bootseed.early.blockdev import (
    BlockDevError,
    BlockDevice,
    DeviceFinder,
    Mounter,
    default_finder,
    mounted,
    with_labels,
)
from bootseed.early.budget import Budget
from bootseed.early.dmi import DEFAULT_DMI_DIR, read_dmi
from bootseed.early.sources import cloudconfigurl, configdrive, ec2, nocloud, ovf
from bootseed.early.sources.base import Context, SourceError

DEFAULT_BUDGET = 20.0
PROC_CMDLINE = "/proc/cmdline"


@dataclass
class DiscoveryConfig:
    """Everything discovery reads from the system, so tests can point it elsewhere."""

    cmdline: str = ""
    root: str = "/"
    dmi_dir: str = DEFAULT_DMI_DIR
    ec2_endpoints: list[str] = field(default_factory=lambda: list(ec2.DEFAULT_ENDPOINTS))
    blockdev_finder: DeviceFinder | None = None
    mounter: Mounter = mounted
    scan_discs: bool = True
    total_budget: float | None = None
    request_timeout: float = 2.0
    ec2_token_ttl: int = 21600
    ec2_api_version: str = "latest"
    seed_dirs: tuple[str, ...] = nocloud.SEED_DIRS
    max_discs: int = 8
    stage: str = "early"
    # Every discovery log line also goes here (see Context.sink).
    log_sink: Callable[[str], None] | None = None

    @classmethod
    def from_system(cls, root: str | os.PathLike[str] = "/",
                    cmdline: str | None = None) -> DiscoveryConfig:
        """What the system under ``root`` says. A root other than ``/`` is a target
        being configured, not the machine this runs on: its kernel command line and
        DMI are read under it (``ROOT/proc/cmdline``, ``ROOT/sys/class/dmi/id``, absent
        means none) and the host's block devices are not scanned for seed discs."""
        own = os.path.realpath(os.fspath(root)) == "/"
        base = "" if own else os.fspath(root)
        if cmdline is None:
            try:
                with open(base + PROC_CMDLINE, encoding="utf-8", errors="replace") as handle:
                    cmdline = handle.read()
            except OSError:
                cmdline = ""
        return cls(cmdline=cmdline, root=os.fspath(root), dmi_dir=base + DEFAULT_DMI_DIR,
                   scan_discs=own)


def needs_network(config: DiscoveryConfig) -> bool:
    """Whether the seed may come over the network: a remote seed URL or
    cloud-config-url on the command line, or EC2 (named, or per DMI)."""
    args = cmdline.parse(config.cmdline).seed
    if args.datasource == "none":
        return False
    if args.cloud_config_url and not http.is_local(args.cloud_config_url):
        return True
    if args.seed_url and not http.is_local(args.seed_url) and args.datasource in (None,
                                                                               "nocloud"):
        return True
    if args.datasource == "ec2":
        return True
    return args.datasource is None and read_dmi(config.dmi_dir).is_ec2


def discover(config: DiscoveryConfig) -> Seed:
    return _discover_with(config, _search_all)


def discover_seed_dirs(config: DiscoveryConfig) -> Seed:
    """Only the NoCloud seed directories under ``config.root``.

    They live on the real root, which the initramfs stage cannot see, so after
    an early "no seed" the late agent still looks there; everything else the
    early stage already searched."""
    return _discover_with(config, _search_seed_dirs_only)


SearchFn = Callable[[DiscoveryConfig, SeedParams, Context], "Seed | None"]


def _discover_with(config: DiscoveryConfig, search: SearchFn) -> Seed:
    created = time.time()
    started = time.monotonic()
    args = cmdline.parse(config.cmdline).seed
    total = config.total_budget if config.total_budget is not None else (
        args.timeout or DEFAULT_BUDGET)
    ctx = Context(Budget(total), request_timeout=config.request_timeout, debug=args.debug,
                  stage=config.stage, sink=config.log_sink)
    ctx.problems.extend(replace(p, level=RECORDED_LEVEL) for p in args.problems)
    seed: Seed | None = None
    try:
        seed = search(config, args, ctx)
    except Exception as exc:  # discovery must never take the boot down
        ctx.problem("discovery", f"internal error: {type(exc).__name__}: {exc}")
    result = seed or Seed(source="none")
    if ctx.budget.exhausted:
        ctx.problem("discovery", f"time budget of {total:g}s used up; later sources skipped")
    result.stage = config.stage
    result.created = created
    result.problems = ctx.problems
    result.timings = ctx.timings
    ms = (time.monotonic() - started) * 1000.0
    result.timings.append(_timing("discover", ms, "ok" if result.has_seed else "none"))
    return result


def _timing(name: str, ms: float, outcome: str) -> StepTiming:
    return StepTiming(name=name, duration_ms=round(ms, 3), outcome=outcome)


def _search_all(config: DiscoveryConfig, args: SeedParams, ctx: Context) -> Seed | None:
    seed = _search(config, args, ctx)
    if args.cloud_config_url and args.datasource != "none":
        with ctx.step("cloud-config-url") as step:
            body = cloudconfigurl.fetch(ctx, args.cloud_config_url)
            step.outcome = "ok" if body is not None else "error"
        if body is not None:
            seed = cloudconfigurl.attach(ctx, seed or Seed(source="none"),
                                         args.cloud_config_url, body, args.instance_id)
    return seed


def _search_seed_dirs_only(config: DiscoveryConfig, args: SeedParams,
                           ctx: Context) -> Seed | None:
    if args.datasource not in (None, "nocloud"):
        return None
    return _search_seed_dirs(config, args, ctx)


def _search_seed_dirs(config: DiscoveryConfig, args: SeedParams, ctx: Context) -> Seed | None:
    for rel in config.seed_dirs:
        path = Path(config.root, rel)
        if not path.is_dir():
            continue
        seed = _attempt(ctx, f"nocloud-dir {path}", _dir_probe(ctx, path, args))
        if seed is not None:
            return seed
    return None


def _search(config: DiscoveryConfig, args: SeedParams, ctx: Context) -> Seed | None:
    ds = args.datasource
    if ds == "none":
        ctx.log("datasource none: not looking for a seed")
        return None

    def wanted(name: str) -> bool:
        return ds is None or ds == name

    if args.seed_url:
        if wanted("nocloud"):
            seed = _attempt(ctx, "nocloud-url",
                            lambda: nocloud.from_url(ctx, args.seed_url or "", args))
            if seed is not None:
                return seed
        else:
            ctx.problem(f"kernel command line: {args.seed_url_param}",
                        f"seed URL ignored: the datasource is {ds}")
    if wanted("nocloud"):
        seed = _search_seed_dirs(config, args, ctx)
        if seed is not None:
            return seed
    if config.scan_discs and (wanted("nocloud") or wanted("configdrive") or wanted("ovf")):
        seed = _search_discs(config, args, ctx, wanted)
        if seed is not None:
            return seed
    if ds == "ec2" or ds is None:
        with ctx.step("dmi") as step:
            on_ec2 = ds == "ec2" or read_dmi(config.dmi_dir).is_ec2
            step.outcome = "ec2" if on_ec2 else "not-ec2"
        if on_ec2:
            return _attempt(ctx, "ec2", lambda: ec2.fetch(
                ctx, config.ec2_endpoints, config.ec2_token_ttl, config.ec2_api_version))
    return None


def _attempt(ctx: Context, name: str, probe: Callable[[], Seed | None]) -> Seed | None:
    """Run one source as a timed step; its failure is a problem, not the end."""
    if ctx.budget.exhausted:
        return None
    with ctx.step(name) as step:
        try:
            seed = probe()
        except SourceError as exc:
            ctx.problem(exc.where, exc.message)
            step.outcome = "error"
            return None
        except (BlockDevError, OSError) as exc:
            ctx.problem(name, str(exc))
            step.outcome = "error"
            return None
        step.outcome = "ok" if seed is not None else "none"
        return seed


def _search_discs(config: DiscoveryConfig, args: SeedParams, ctx: Context,
                  wanted: Callable[[str], bool]) -> Seed | None:
    with ctx.step("blockdev-scan") as step:
        try:
            finder = config.blockdev_finder or default_finder()
            devices = finder.scan()
            step.outcome = f"{finder.name}: {len(devices)} devices"
        except (BlockDevError, OSError) as exc:
            ctx.problem("block devices", f"scan failed: {exc}")
            step.outcome = "error"
            return None
    cidata = with_labels(devices, nocloud.DISC_LABELS)
    config2 = with_labels(devices, configdrive.DISC_LABELS)
    labelled = {d.path for d in cidata + config2}
    iso = [d for d in devices if d.path not in labelled and (
        d.fstype == "iso9660" or (d.fstype is None and os.path.basename(d.path).startswith("sr")))]
    plan: list[tuple[str, BlockDevice]] = []
    if wanted("nocloud"):
        plan += [("nocloud", d) for d in cidata]
    if wanted("configdrive"):
        plan += [("configdrive", d) for d in config2]
    if wanted("ovf"):
        plan += [("ovf", d) for d in iso]
    for kind, device in plan[: config.max_discs]:
        seed = _attempt(ctx, f"{kind}-disc {device.path}",
                        _disc_probe(ctx, config.mounter, kind, device, args))
        if seed is not None:
            return seed
    return None


def _dir_probe(ctx: Context, path: Path, args: SeedParams) -> Callable[[], Seed | None]:
    return lambda: nocloud.from_directory(ctx, path, args)


def _disc_probe(ctx: Context, mounter: Mounter, kind: str, device: BlockDevice,
                args: SeedParams) -> Callable[[], Seed | None]:
    return lambda: _read_disc(ctx, mounter, kind, device, args)


def _read_disc(ctx: Context, mounter: Mounter, kind: str, device: BlockDevice,
               args: SeedParams) -> Seed | None:
    with mounter(device, max(1.0, ctx.budget.cap(15.0))) as mnt:
        if kind == "nocloud":
            seed = nocloud.from_directory(ctx, mnt, args, location=device.path)
            if seed is None:
                ctx.problem(device.path, "labelled cidata but has no meta-data or user-data")
            return seed
        if kind == "configdrive":
            return configdrive.from_mount(ctx, mnt, device.path)
        return ovf.from_mount(ctx, mnt, device.path, args)
