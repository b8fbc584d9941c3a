"""Find the seed: which sources to ask, in which order, within one time budget.

Order: a seed URL from the command line, seed directories, discs by label
(``cidata``, ``config-2``, then ISO9660 discs holding ``ovf-env.xml``), then
the EC2 metadata service and the OpenStack metadata service, each only asked
when the command line names it or DMI says this is that cloud — off-cloud
nothing is probed over the network. ``cloud-config-url=`` is added on top as
vendor-data. ``discover`` never raises: every failure becomes a problem in
the returned :class:`Seed`.

The initramfs searches everything at once (:func:`discover`). The late agent
splits the search in two (docs/network.md): :func:`discover_local` before the
network is up (no network source), and :func:`discover_network` once it is,
only when :func:`network_sources` names one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
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
from bootseed.early.sources import cloudconfigurl, configdrive, ec2, nocloud, openstack, ovf
from bootseed.early.sources.base import Context, SourceError

DEFAULT_BUDGET = 20.0
PROC_CMDLINE = "/proc/cmdline"
# Where a seed the late agent found over the network says it came from (Seed.stage).
NETWORK_STAGE = "network"


class Scope(Enum):
    """Which sources one search asks."""

    ALL = "all"
    LOCAL = "local"
    NETWORK = "network"

    def allows(self, remote: bool) -> bool:
        return self is Scope.ALL or (self is Scope.NETWORK) == remote


@dataclass
class DiscoveryConfig:
    """Everything discovery reads from the system, so tests can point it elsewhere."""

    cmdline: str = ""
    root: str = "/"
    dmi_dir: str = DEFAULT_DMI_DIR
    ec2_endpoints: list[str] = field(default_factory=lambda: list(ec2.DEFAULT_ENDPOINTS))
    openstack_endpoints: list[str] = field(
        default_factory=lambda: list(openstack.DEFAULT_ENDPOINTS))
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


def network_sources(config: DiscoveryConfig) -> tuple[str, ...]:
    """The network sources the command line and DMI allow, in search order: a remote
    seed URL (``nocloud-url``), ``ec2`` and ``openstack`` (named, or per DMI), a remote
    ``cloud-config-url``. Empty off-cloud: nothing is probed then."""
    args = cmdline.parse(config.cmdline).seed
    ds = args.datasource
    if ds == "none":
        return ()
    found: list[str] = []
    if args.seed_url and not http.is_local(args.seed_url) and ds in (None, "nocloud"):
        found.append("nocloud-url")
    if ds in ("ec2", "openstack"):
        found.append(ds)
    elif ds is None:
        dmi = read_dmi(config.dmi_dir)
        found += [name for name, yes in (("ec2", dmi.is_ec2),
                                         ("openstack", dmi.is_openstack)) if yes]
    if args.cloud_config_url and not http.is_local(args.cloud_config_url):
        found.append("cloud-config-url")
    return tuple(found)


def needs_network(config: DiscoveryConfig) -> bool:
    """Whether the seed may come over the network (:func:`network_sources`)."""
    return bool(network_sources(config))


def discover(config: DiscoveryConfig) -> Seed:
    return _discover_with(config, _scoped(Scope.ALL))


def discover_local(config: DiscoveryConfig) -> Seed:
    """Every source that needs no network: a local seed URL, seed directories, discs."""
    return _discover_with(config, _scoped(Scope.LOCAL))


def discover_network(config: DiscoveryConfig) -> Seed:
    """Only the network sources :func:`network_sources` allows (none off-cloud); the
    seed says ``stage = "network"``."""
    seed = _discover_with(config, _scoped(Scope.NETWORK))
    seed.stage = NETWORK_STAGE
    return seed


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


def _scoped(scope: Scope) -> SearchFn:
    return lambda config, args, ctx: _search_scope(config, args, ctx, scope)


def _search_scope(config: DiscoveryConfig, args: SeedParams, ctx: Context,
                  scope: Scope) -> Seed | None:
    seed = _search(config, args, ctx, scope)
    url = args.cloud_config_url
    if not url or args.datasource == "none":
        return seed
    remote = not http.is_local(url)
    # A local search leaves a remote cloud-config-url to the network search, which
    # follows when it found no seed; with a seed found it is fetched now or never.
    if not scope.allows(remote) and not (scope is Scope.LOCAL and seed is not None):
        return seed
    with ctx.step("cloud-config-url") as step:
        body = cloudconfigurl.fetch(ctx, url)
        step.outcome = "ok" if body is not None else "error"
    if body is not None:
        seed = cloudconfigurl.attach(ctx, seed or Seed(source="none"), url, body,
                                     args.instance_id)
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


def _search(config: DiscoveryConfig, args: SeedParams, ctx: Context,
            scope: Scope) -> Seed | None:
    ds = args.datasource
    if ds == "none":
        ctx.log("datasource none: not looking for a seed")
        return None

    def wanted(name: str) -> bool:
        return ds is None or ds == name

    if args.seed_url and scope.allows(not http.is_local(args.seed_url)):
        if wanted("nocloud"):
            seed = _attempt(ctx, "nocloud-url",
                            lambda: nocloud.from_url(ctx, args.seed_url or "", args))
            if seed is not None:
                return seed
        else:
            ctx.problem(f"kernel command line: {args.seed_url_param}",
                        f"seed URL ignored: the datasource is {ds}")
    if scope.allows(remote=False):
        seed = _search_local_media(config, args, ctx, wanted)
        if seed is not None:
            return seed
    if scope.allows(remote=True) and ds in (None, "ec2", "openstack"):
        return _search_metadata_services(config, ctx, ds)
    return None


def _search_local_media(config: DiscoveryConfig, args: SeedParams, ctx: Context,
                        wanted: Callable[[str], bool]) -> Seed | None:
    if wanted("nocloud"):
        seed = _search_seed_dirs(config, args, ctx)
        if seed is not None:
            return seed
    if config.scan_discs and (wanted("nocloud") or wanted("configdrive") or wanted("ovf")):
        return _search_discs(config, args, ctx, wanted)
    return None


def _search_metadata_services(config: DiscoveryConfig, ctx: Context,
                              ds: str | None) -> Seed | None:
    """EC2, then OpenStack: each only when named, or (nothing named) when DMI says so."""
    with ctx.step("dmi") as step:
        dmi = read_dmi(config.dmi_dir) if ds is None else None
        on_ec2 = ds == "ec2" or (dmi is not None and dmi.is_ec2)
        on_openstack = ds == "openstack" or (dmi is not None and dmi.is_openstack)
        step.outcome = "ec2" if on_ec2 else "openstack" if on_openstack else "not-a-cloud"
    if on_ec2:
        seed = _attempt(ctx, "ec2", lambda: ec2.fetch(
            ctx, config.ec2_endpoints, config.ec2_token_ttl, config.ec2_api_version))
        if seed is not None:
            return seed
    if on_openstack:
        return _attempt(ctx, "openstack",
                        lambda: openstack.fetch(ctx, config.openstack_endpoints))
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
