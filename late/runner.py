"""The late agent's run: seed → instance → user-data → validation → modules.

One process can pass through all four stages (``--stage all``, the boot
default, one interpreter start per boot) or run a single stage; a single stage
first runs any earlier stage this boot has not finished, so the order always
holds. Nothing a module does can stop the run: failures are recorded in the
status and the next module runs.

Where the ``cloud_init_modules`` run: in the local stage, before READY=1,
because with the seed already cached none of them needs the network, and
what follows READY (networking, sshd) must find the hostname and the SSH host
keys in place. Only when user-data pulls in URLs (``#include``) does user-data
processing, and with it the init modules, wait for the network stage; the first of
them, ``network_config``, still runs before READY=1 then, since the network being
waited for is the one it configures (docs/network.md).

Late network discovery: the local stage searches local sources only. When they
(and the initramfs, if it ran) found no seed but the command line or DMI names a
network source (a remote NoCloud URL, EC2, OpenStack), the local stage leaves the
seed to the network stage, which searches those sources once the network is up,
with the same budget, and then does what the local stage could not: instance,
user-data and the init modules. Off-cloud no network source is named and nothing
is probed.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bootseed.contract.actions import Action
from bootseed.contract.cmdline import KernelParams
from bootseed.contract.cmdline import parse as parse_cmdline
from bootseed.contract.problems import Level, Problem
from bootseed.contract.seedcache import (
    Seed,
    SeedCacheError,
    read_recorded_actions,
    read_seed_cache,
    write_seed_cache,
)
from bootseed.late import __version__, cloudinit_files, filelock, jsonout
from bootseed.late.backgroundjob import BackgroundJob
from bootseed.late.instance import (
    build_instance_data,
    instance_id_of,
    instance_info,
    write_instance_data,
)
from bootseed.late.logsetup import setup_logging
from bootseed.late.model import Frequency, InstanceInfo, Stage
from bootseed.late.modules.base import ModuleContext, ModuleSpec
from bootseed.late.outputredirect import OutputRedirector
from bootseed.late.redact import Redactor
from bootseed.late.registry import Registry, load_registry
from bootseed.late.stages import MODULE_STAGE, ORDER, PlannedModule, RunStage, plan_stage
from bootseed.late.state import StateStore
from bootseed.late.status import (
    ModuleResult,
    RunStatus,
    StageTiming,
    prepare_run_dir,
    read_status,
    result_document,
    write_result,
    write_status,
)
from bootseed.late.target import TargetPathError, TargetRoot

if TYPE_CHECKING:
    from bootseed.early.discover import DiscoveryConfig
    from bootseed.late.userdata_flow import BuiltConfig

DEFAULT_RUN_DIR = "/run/bootseed"
DISABLE_FILE = "/etc/bootseed/disabled"
CONFIG_NAME = "cloud-config.json"
LOCK_TIMEOUT = 60.0
# With --notify: READY=1 is sent at the latest this long after the start, even if the
# local stage is still running (bootseed.service has no start timeout of its own).
READY_DEADLINE = 300.0

log = logging.getLogger("bootseed.runner")


@dataclass
class RunOptions:
    root: Path = Path("/")
    # Host paths; both default to <root>/run/bootseed.
    seed_dir: Path | None = None
    run_dir: Path | None = None
    stages: tuple[RunStage, ...] = ORDER
    notify: bool = False
    network_timeout: float = 30.0
    proc: Path = Path("/proc")
    console: Callable[[str], None] | None = None
    log_stream: TextIO | None = None
    verbose: bool = False
    extra_modules: tuple[ModuleSpec, ...] = ()
    # Where the network search asks the metadata services (tests: mocks on 127.0.0.1);
    # None: the services' real addresses.
    ec2_endpoints: tuple[str, ...] | None = None
    openstack_endpoints: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OneModule:
    """What ``bootseed single`` did: the module's result, or why nothing ran."""

    name: str
    result: ModuleResult | None = None
    problems: tuple[Problem, ...] = ()
    error: str | None = None


def console_writer(device: str = "/dev/console") -> Callable[[str], None]:
    """Lines for the operator: ``device`` when we may write it, else stderr."""

    def write(line: str) -> None:
        text = line if line.endswith("\n") else line + "\n"
        try:
            with open(device, "a", encoding="utf-8") as console:
                console.write(text)
                return
        except OSError:
            pass
        sys.stderr.write(text)
        sys.stderr.flush()

    return write


def read_uptime(proc: Path) -> float:
    try:
        return float((proc / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return time.monotonic()


def read_boot_id(proc: Path) -> str:
    try:
        return (proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        # No boot id to be found (a test root): a random one, as the kernel's is.
        return f"unknown-{os.urandom(16).hex()}"


@dataclass
class _ModuleJob:
    job: BackgroundJob
    module: str
    frequency: Frequency
    instance_id: str
    # The module's handler returned (did not raise) after starting this job.
    handle_ok: bool = False


class Runner:
    def __init__(self, options: RunOptions) -> None:
        self.opts = options
        self.target = TargetRoot(options.root)
        self.run_dir = options.run_dir or self.target.real_path(DEFAULT_RUN_DIR)
        self.seed_dir = options.seed_dir or self.target.real_path(DEFAULT_RUN_DIR)
        self.state = StateStore(self.target)
        self.redactor = Redactor()
        self.console = options.console or console_writer()
        self.status = RunStatus()
        self._registry: Registry | None = None
        self._load_problems_reported = 0
        self._recorded_actions: tuple[Action, ...] | None = None
        self.seed: Seed | None = None
        self.info: InstanceInfo | None = None
        self.cfg: dict[str, Any] | None = None
        self.stopped = False
        self._ready_lock = threading.Lock()
        self._ready_sent = False
        self.output = OutputRedirector(self.target)
        # Schema validation waits for READY=1 (or the local stage's end) and runs beside
        # the later stages; its problems go in at this index of the status.
        self._validation: tuple[BackgroundJob, int] | None = None
        self._past_ready = False
        # Modules' work beside the boot (ModuleContext.run_beside), joined with validation.
        self._module_jobs: list[_ModuleJob] = []

    # -- the run ---------------------------------------------------------------

    def run(self) -> RunStatus:
        prepare_run_dir(self.run_dir)
        kernel = self.kernel_params()
        logs = setup_logging(self.target, self.redactor, stream=self.opts.log_stream,
                             verbose=self.opts.verbose,
                             syslog=kernel.syslog if kernel is not None else None)
        try:
            with self._lock():
                self._run_locked()
        finally:
            self.output.restore()
            logs.close()
        return self.status

    def run_one(self, name: str, frequency: Frequency | None = None) -> OneModule:
        """One module now, outside the stages (``bootseed single``), on the config the
        last run processed. Its frequency (the module's own unless given) is honoured
        as in a stage: per-boot (cloud-init's ``always``) runs whatever ran before,
        per-instance and per-once skip a module their semaphore says ran. The status
        document is left as the last run wrote it."""
        prepare_run_dir(self.run_dir)
        logs = setup_logging(self.target, self.redactor, stream=self.opts.log_stream,
                             verbose=self.opts.verbose)
        try:
            with self._lock():
                return self._run_one_locked(name, frequency)
        finally:
            logs.close()

    def _run_one_locked(self, name: str, frequency: Frequency | None) -> OneModule:
        canonical = self.registry.resolve(name)
        if canonical is None:
            return OneModule(name, error=f"unknown module {name!r} "
                                         "('bootseed schema --dump' lists the modules)")
        # Not the network stage: a single module never starts a seed search.
        self._ensure_context(RunStage.CONFIG)
        if self.seed is None or self.info is None:
            why = "; ".join(self.status.errors) or "no seed was found: nothing to configure"
            return OneModule(canonical, error=why)
        config = self.state.instance_dir(self.info.instance_id) / CONFIG_NAME
        if not config.is_file():
            return OneModule(canonical, error=f"instance {self.info.instance_id}: user-data "
                                              "not processed yet (run 'bootseed run' first)")
        meta = self.registry.meta(canonical)
        planned = PlannedModule(canonical, meta, frequency or meta.frequency, "single")
        stage = next(run for run, module in MODULE_STAGE.items() if module is meta.stage)
        log.info("single: %s (%s)", canonical, planned.frequency)
        result = self._run_module(planned, stage, self._load_cfg())
        self._join_module_jobs()
        self._report_load_problems()
        if result is None:
            why = "; ".join(p.message for p in self.status.problems) or "its code did not load"
            return OneModule(canonical, problems=tuple(self.status.problems), error=why)
        return OneModule(canonical, result, tuple(self.status.problems))

    def _run_locked(self) -> None:
        boot_id = read_boot_id(self.opts.proc)
        stages = self._stages_to_run(boot_id)
        log.info("bootseed %s: stages %s on %s", __version__, ", ".join(stages),
                 self.target.root)
        notified = False
        # systemd waits for READY=1 without a start timeout (a slow machine must not be
        # killed in the middle of host key generation); this bound is the agent's own.
        overdue = threading.Timer(READY_DEADLINE, self._ready_overdue) if self.opts.notify else None
        if overdue is not None:
            overdue.daemon = True
            overdue.start()
        try:
            for stage in stages:
                if self.stopped:
                    break
                if stage is RunStage.NETWORK and self.opts.notify and not notified:
                    notified = self._notify_ready()
                if stage is RunStage.NETWORK:
                    self._start_validation()
                if stage is RunStage.NETWORK and RunStage.LOCAL in stages:
                    self._wait_for_network()
                self._run_stage(stage)
            if self.opts.notify and not notified:
                notified = self._notify_ready()
        except Exception as exc:  # the runner's own bug: say so, never hang the boot
            log.exception("run aborted")
            self.status.errors.append(f"run aborted: {type(exc).__name__}: {exc}")
            self.status.state = "error"
        finally:
            if overdue is not None:
                overdue.cancel()
            if self.opts.notify and not notified:
                self._notify_ready()
            self._join_module_jobs()
            self._join_validation()
            self._finish(stages)

    def _stages_to_run(self, boot_id: str) -> list[RunStage]:
        wanted = set(self.opts.stages)
        previous = None if RunStage.LOCAL in wanted else read_status(self.run_dir)
        if previous is not None and previous.get("boot_id") == boot_id:
            self.status = RunStatus.from_json(previous)
            self.status.state = "running"
            self.status.finished = None
        else:
            self.status = RunStatus(boot_id=boot_id)
        last_wanted = max(ORDER.index(s) for s in wanted)
        # Earlier stages this boot has not finished run first, so the order always holds.
        return [
            s for i, s in enumerate(ORDER)
            if s in wanted or (i < last_wanted and not self.status.stage_done(s))
        ]

    def _run_stage(self, stage: RunStage) -> None:
        self.status.stage = str(stage)
        timing = StageTiming(start=time.time())
        self.status.stages[str(stage)] = timing
        # A re-run stage replaces its earlier module results in the status.
        self.status.modules = [m for m in self.status.modules if m.stage != str(stage)]
        if stage is RunStage.LOCAL:
            self.status.config_stage = None
        self._write_status()
        started = time.monotonic()
        log.info("stage %s: start", stage)
        if stage is RunStage.LOCAL:
            self._stage_local()
        else:
            self._ensure_context(stage)
            if not self.stopped:
                if stage is RunStage.NETWORK:
                    if self.status.config_stage is None:
                        self._configure(stage)
                else:
                    self._run_modules(stage, MODULE_STAGE[stage])
                if stage is RunStage.FINAL:
                    self._write_boot_finished()
        timing.end = time.time()
        timing.duration = round(time.monotonic() - started, 6)
        log.info("stage %s: done in %.3f s", stage, timing.duration)
        self._write_status()

    def _finish(self, stages: list[RunStage]) -> None:
        if self.status.state == "running":
            finished_all = self.stopped or RunStage.FINAL in stages
            if self.status.errors or any(m.status == "failed" for m in self.status.modules):
                self.status.state = "error" if finished_all else "running"
            elif finished_all:
                self.status.state = "done"
        if self.status.state in ("done", "error", "disabled"):
            self.status.finished = time.time()
            self.status.boot_finished_uptime = read_uptime(self.opts.proc)
            write_result(self.run_dir, self.status, self.redactor)
            self._mirror(cloudinit_files.write_result, self.target,
                         result_document(self.status, self.redactor))
        self._write_status()
        log.info("bootseed: %s", self.status.state)

    # -- local: seed, instance, state ------------------------------------------

    def _disabled_reason(self) -> str | None:
        if self.target.exists(DISABLE_FILE):
            return f"{DISABLE_FILE} exists"
        kernel = self.kernel_params()
        if kernel is not None and kernel.disabled_by is not None:
            return f"{kernel.disabled_by} on the kernel command line"
        return None

    def kernel_params(self) -> KernelParams | None:
        """The running kernel's parameters; None for a target that is not the running system."""
        if not self.target.is_host:
            return None
        try:
            cmdline = (self.opts.proc / "cmdline").read_text()
        except OSError:
            cmdline = ""
        return parse_cmdline(cmdline)

    def _stage_local(self) -> None:
        reason = self._disabled_reason()
        if reason:
            log.info("bootseed is disabled: %s", reason)
            self.status.state = "disabled"
            self.status.problems.append(Problem("bootseed", f"disabled: {reason}", Level.NOTE))
            self.stopped = True
            return
        self._forward_system_log()
        seed = self._load_seed(discover_missing=True)
        if seed is None:
            return
        sources = self._network_search_due(seed)
        if sources:
            log.info("no seed on local sources; searching %s once the network is up",
                     ", ".join(sources))
            return
        self._start_instance(seed, RunStage.LOCAL)

    def _start_instance(self, seed: Seed, stage: RunStage) -> None:
        """Adopt the seed, select the instance and configure it (user-data, init modules)."""
        self._adopt_seed(seed)
        if self.stopped:
            return
        assert self.info is not None
        change = self.state.select_instance(self.info.instance_id)
        self.status.previous_instance_id = change.previous
        self.status.new_instance = change.is_new
        log.info("instance %s (%s)", change.current,
                 "new instance" if change.is_new else "same instance as last boot")
        for name, saved in (("user-data", "user-data.txt"), ("vendor-data", "vendor-data.txt")):
            if name in seed.payloads:
                self.state.write_private(self.info.instance_id, saved, seed.payloads[name])
        self._mirror(cloudinit_files.select_instance, self.target, self.info.instance_id,
                     self.state.instance_dir(self.info.instance_id).name)
        self._write_instance_data(build_instance_data(seed, self.info))
        from bootseed.late.userdata_flow import needs_network

        if stage is RunStage.LOCAL and needs_network(seed):
            log.info("user-data includes URLs: processing it after the network is up")
            self._network_config_before_ready()
            return
        self._configure(stage)

    def _forward_system_log(self) -> None:
        """Before any module: the system logger forwards to ``bootseed.syslog=`` (or stops
        doing so when the parameter is gone)."""
        from bootseed.late.rsyslogd import WHERE, configure_forwarding

        kernel = self.kernel_params()
        if kernel is None:
            return
        try:
            problems = configure_forwarding(self.target, kernel.syslog)
        except (OSError, TargetPathError) as exc:
            problems = [Problem(WHERE, f"cannot write the rsyslog drop-in: {exc}",
                                Level.WARNING)]
        self.status.problems.extend([*kernel.syslog_problems, *problems])
        if kernel.syslog is not None:
            log.info("log lines go to %s too", kernel.syslog.url)

    def _network_config_before_ready(self) -> None:
        """User-data waits for the network, but the network it waits for is the one the
        seed configures: ``network_config`` runs now, with the system config only (so
        user-data's ``network: {config: disabled}`` is not seen in this case)."""
        from bootseed.late.userdata_flow import load_system_config

        name = "network_config"
        if self.registry.resolve(name) != name:
            return
        meta = self.registry.meta(name)
        system = load_system_config(self.target)
        planned = PlannedModule(name, meta, meta.frequency, "before READY=1")
        result = self._run_module(planned, RunStage.LOCAL, system.config)
        if result is not None:
            self.status.modules.append(result)

    def _configure(self, stage: RunStage) -> None:
        """Process user-data and run the init modules, once per boot."""
        self._process_user_data()
        self.status.config_stage = str(stage)
        self._run_modules(stage, MODULE_STAGE[RunStage.NETWORK])

    def _load_seed(self, discover_missing: bool) -> Seed | None:
        try:
            seed = read_seed_cache(self.seed_dir)
        except SeedCacheError as exc:
            self.status.errors.append(f"seed cache unusable: {exc}")
            self.status.state = "error"
            self.stopped = True
            return None
        if seed is not None:
            if discover_missing and not seed.has_seed and seed.stage == "early":
                seed = self._look_on_real_root(seed)
            self.status.source = seed.source
            return seed
        if not discover_missing:
            self.status.errors.append(f"no seed cache in {self.seed_dir}; run the local stage")
            self.status.state = "error"
            self.stopped = True
            return None
        seed = self._discover()
        write_seed_cache(seed, self.seed_dir)
        prepare_run_dir(self.run_dir)  # the cache writer leaves the directory 0700
        return seed

    def _look_on_real_root(self, early: Seed) -> Seed:
        """The initramfs could not see seed directories on the real root; look there
        before accepting its "no seed". Its records (timings, actions such as a
        rescue boot, problems) stay part of the seed either way."""
        from bootseed.early.discover import DiscoveryConfig, discover_seed_dirs

        found = discover_seed_dirs(DiscoveryConfig.from_system(self.target.root, cmdline=None))
        if not found.has_seed:
            return early
        log.info("the early stage found no seed; found one in %s", found.location)
        found.stage = "late"
        found.timings = early.timings + found.timings
        found.actions = early.actions + found.actions
        found.problems = early.problems + found.problems
        write_seed_cache(found, self.seed_dir)
        prepare_run_dir(self.run_dir)
        return found

    def _discover(self) -> Seed:
        from bootseed.early.discover import discover_local

        log.info("no seed cache in %s: searching the local seed sources", self.seed_dir)
        seed = discover_local(self._discovery_config())
        seed.stage = "late"
        return seed

    def _discovery_config(self) -> DiscoveryConfig:
        from bootseed.early.discover import DiscoveryConfig

        config = DiscoveryConfig.from_system(self.target.root, cmdline=None)
        if self.opts.ec2_endpoints is not None:
            config.ec2_endpoints = list(self.opts.ec2_endpoints)
        if self.opts.openstack_endpoints is not None:
            config.openstack_endpoints = list(self.opts.openstack_endpoints)
        return config

    def _network_search_due(self, seed: Seed) -> tuple[str, ...]:
        """The network sources still to search: none when there is a seed, when the
        network stage already searched them, or when neither the command line nor DMI
        names one (off-cloud)."""
        if seed.has_seed:
            return ()  # before the import: the discovery code is not needed (seconds in TCG)
        from bootseed.early.discover import NETWORK_STAGE, network_sources

        if seed.stage == NETWORK_STAGE:
            return ()
        return network_sources(self._discovery_config())

    def _discover_network(self, before: Seed) -> Seed:
        """Search the network sources; the result (seed or not) replaces the cache, with
        the earlier search's records kept, so no later stage searches again."""
        from bootseed.early.discover import discover_network

        found = discover_network(self._discovery_config())
        log.info("network seed search: %s", f"found {found.source} at {found.location}"
                 if found.has_seed else "no seed")
        found.timings = before.timings + found.timings
        found.actions = before.actions + found.actions
        found.problems = before.problems + found.problems
        write_seed_cache(found, self.seed_dir)
        prepare_run_dir(self.run_dir)
        return found

    def _adopt_seed(self, seed: Seed) -> None:
        self.seed = seed
        self.status.source = seed.source
        self.status.problems += [replace(p, where=f"seed: {p.where}") for p in seed.problems]
        if not seed.has_seed:
            log.info("no seed found: nothing to do")
            self.status.no_seed = True
            self.stopped = True
            return
        iid, from_seed = instance_id_of(seed)
        if not from_seed:
            self.status.problems.append(Problem(
                "seed", f"the seed has no instance-id; using {iid!r}", Level.WARNING))
        self.info = instance_info(seed)
        self.status.instance_id = self.info.instance_id

    def _ensure_context(self, stage: RunStage) -> None:
        """A later stage run in its own process reloads what the local stage established;
        the network stage first searches the network sources the local stage left to it."""
        if self.seed is not None:
            return
        seed = self._load_seed(discover_missing=False)
        if seed is None:
            return
        if stage is RunStage.NETWORK and self._network_search_due(seed):
            seed = self._discover_network(seed)
            if seed.has_seed:
                self._start_instance(seed, stage)
                return
        self._adopt_seed(seed)

    # -- network: user-data ----------------------------------------------------

    def _process_user_data(self) -> None:
        assert self.seed is not None and self.info is not None
        from bootseed.late.userdata_flow import build_config

        idir = self.state.instance_dir(self.info.instance_id)
        instance_data = build_instance_data(self.seed, self.info)
        built = build_config(self.seed, self.info, self.target, idir, instance_data,
                             self.registry, extra_modules=self.opts.extra_modules,
                             validate=False)
        self._report_load_problems()
        self.status.problems += built.problems
        # The validator gets its own copy: modules may change the config they are given.
        checked = replace(built, config=copy.deepcopy(built.config), problems=[])
        registry, extra = self.registry, self.opts.extra_modules
        job = BackgroundJob(lambda: _validate_cached(checked, registry, idir, extra),
                            where="schema", what="cloud-config not validated")
        self._validation = (job, len(self.status.problems))
        if self._past_ready:
            job.start()
        self.cfg = built.config
        self.redactor.learn_from_config(self.cfg)
        self.state.write_private(
            self.info.instance_id, CONFIG_NAME, jsonout.dumps(self.cfg, indent=2))
        self.state.write_private(
            self.info.instance_id, "user-data.parts.json",
            jsonout.dumps(built.parts_summary, indent=2))
        self._write_instance_data(build_instance_data(self.seed, self.info, self.cfg))
        from bootseed.late.parts import install_parts

        for parts, vendor in ((built.user_parts, False), (built.vendor_parts, True)):
            self.status.problems += install_parts(parts, target=self.target, instance_dir=idir,
                                                  instance_id=self.info.instance_id,
                                                  vendor=vendor, log=log)

    def _start_validation(self) -> None:
        self._past_ready = True
        if self._validation is not None:
            self._validation[0].start()

    def _join_validation(self) -> None:
        if self._validation is None:
            return
        job, index = self._validation
        self._validation = None
        found = job.join()
        self._report_load_problems()
        self.status.problems[index:index] = found
        log.info("cloud-config validated: %d problem(s)", len(found))

    def _load_cfg(self) -> dict[str, Any]:
        if self.cfg is None:
            assert self.info is not None
            path = self.state.instance_dir(self.info.instance_id) / CONFIG_NAME
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                self.status.problems.append(Problem(
                    str(path), f"processed config unreadable ({exc}); using none"))
                loaded = {}
            self.cfg = loaded if isinstance(loaded, dict) else {}
            self.redactor.learn_from_config(self.cfg)
        return self.cfg

    # -- modules ---------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            # Lazy: a module's code is imported when it runs or the schema needs it.
            self._registry = load_registry(self.opts.extra_modules, lazy=True)
        self._report_load_problems()
        return self._registry

    def _report_load_problems(self) -> None:
        """Registry problems not yet in the status (imports happen as the run goes)."""
        if self._registry is None:
            return
        new = self._registry.problems[self._load_problems_reported:]
        self._load_problems_reported += len(new)
        self.status.problems += new

    @property
    def recorded_actions(self) -> tuple[Action, ...]:
        """What the initramfs recorded (volumes to mount, a rescue boot, ...), read once."""
        if self._recorded_actions is None:
            try:
                self._recorded_actions = tuple(read_recorded_actions(self.seed_dir))
            except (SeedCacheError, OSError) as exc:
                self.status.problems.append(Problem("recorded actions", f"unusable: {exc}"))
                self._recorded_actions = ()
        return self._recorded_actions

    def _run_modules(self, stage: RunStage, module_stage: Stage) -> None:
        cfg = self._load_cfg()
        # ``output`` comes from the config, so the init stage's applies once it is read.
        self.status.problems += self.output.apply(cfg, str(module_stage))
        plan, problems = plan_stage(module_stage, cfg, self.registry)
        self.status.problems += problems
        for planned in plan:
            result = self._run_module(planned, stage, cfg)
            self._report_load_problems()
            if result is not None:
                self.status.modules.append(result)

    def _run_module(self, planned: PlannedModule, stage: RunStage,
                    cfg: dict[str, Any]) -> ModuleResult | None:
        """The module's result; None when its code cannot be loaded (a registry problem)."""
        assert self.info is not None
        iid = self.info.instance_id
        name, meta, freq = planned.name, planned.meta, planned.frequency

        def result(status: str, duration: float = 0.0, **extra: Any) -> ModuleResult:
            return ModuleResult(name=name, stage=str(stage), frequency=str(freq),
                                status=status, duration=round(duration, 6), **extra)

        if freq is not Frequency.PER_BOOT and self.state.already_ran(name, freq, iid):
            return result("skipped", reason=f"already ran ({freq})")
        if meta.activate_keys and not any(k in cfg for k in meta.activate_keys):
            return result("skipped", reason="no configuration for it")
        spec = self.registry.load(name)
        if spec is None:
            return None
        guarded = not spec.idempotent and freq is not Frequency.PER_BOOT
        if guarded:
            earlier = self.state.earlier_attempt(name, freq, iid)
            if earlier is not None:
                how = "was interrupted" if earlier == "started" else f"failed: {earlier}"
                message = (f"an earlier run of this module {how}; not started again because "
                           "running it twice is not safe (check its effects by hand)")
                logging.getLogger(f"bootseed.module.{name}").error("%s", message)
                return result("failed", error=message, exception="NotRepeated")
        module_log = logging.getLogger(f"bootseed.module.{name}")
        ctx = ModuleContext(
            name=name,
            cfg=cfg,
            target=self.target,
            instance=self.info,
            instance_dir=self.state.instance_dir(iid),
            log=module_log,
            console=self.console,
            add_secret=self.redactor.add,
            boot_uptime=lambda: read_uptime(self.opts.proc),
            recorded_actions=self.recorded_actions,
            payloads=self.seed.payloads if self.seed is not None else {},
            kernel=self.kernel_params(),
        )
        if guarded:
            ctx.begin_unrepeatable = lambda: self.state.mark_attempted(name, freq, iid)
        jobs: list[_ModuleJob] = []

        def beside(what: str, work: Callable[[], list[Problem]]) -> None:
            job = _ModuleJob(BackgroundJob(work, where=name, what=what), name, freq, iid)
            jobs.append(job)
            self._module_jobs.append(job)
            module_log.info("%s: started beside the boot", what)
            job.job.start()

        ctx.background = beside
        started = time.monotonic()
        try:
            spec.handle(ctx)
        except Exception as exc:
            self._add_module_problems(name, ctx)
            duration = time.monotonic() - started
            module_log.error("failed after %.3f s: %s: %s", duration, type(exc).__name__, exc)
            module_log.debug("traceback:\n%s", "".join(traceback.format_exc()))
            if guarded:
                self.state.mark_attempted(name, freq, iid, outcome=type(exc).__name__)
            return result("failed", duration, error=str(exc) or type(exc).__name__,
                          exception=type(exc).__name__)
        duration = time.monotonic() - started
        self._add_module_problems(name, ctx)
        module_log.info("ok in %.3f s", duration)
        if jobs:
            # Marked done when its work beside the boot has finished (_join_module_jobs).
            for job in jobs:
                job.handle_ok = True
            return result("ok", duration)
        # Only now: a crash or failure above leaves the module due on the next run.
        self.state.mark_ran(name, freq, iid)
        return result("ok", duration)

    def _join_module_jobs(self) -> None:
        """Wait for the modules' work beside the boot; a module whose handler and jobs all
        finished without raising is marked done now (a crash before leaves it due)."""
        jobs, self._module_jobs = self._module_jobs, []
        failed: set[str] = set()
        for job in jobs:
            started = time.monotonic()
            found = job.job.join()
            waited = time.monotonic() - started
            self.status.problems += [replace(p, where=f"{job.module}: {p.where}")
                                     if p.where != job.module else p for p in found]
            log.info("%s: %s finished (waited %.3f s, %d problem(s))", job.module,
                     job.job.what, waited, len(found))
            if job.job.failed or not job.handle_ok:
                failed.add(job.module)
            if job.job.failed:
                # The module's result said "ok" when its handler returned; it did not finish.
                for result in self.status.modules:
                    if result.name == job.module and result.status == "ok":
                        result.status = "failed"
                        result.error = "; ".join(p.message for p in found)
                        result.exception = "BackgroundWorkFailed"
        done = {(j.module, j.frequency, j.instance_id) for j in jobs if j.module not in failed}
        for module, frequency, instance_id in sorted(done):
            self.state.mark_ran(module, frequency, instance_id)

    def _add_module_problems(self, name: str, ctx: ModuleContext) -> None:
        """What a module reported while doing the rest of its job (one bad item)."""
        for problem in ctx.problems:
            self.status.problems.append(replace(problem, where=f"{name}: {problem.where}"))

    # -- endings ---------------------------------------------------------------

    def _write_boot_finished(self) -> None:
        assert self.info is not None
        uptime = read_uptime(self.opts.proc)
        text = f"{uptime:.2f} - {time.strftime('%a, %d %b %Y %H:%M:%S %z')} - v. {__version__}\n"
        path = self.state.instance_dir(self.info.instance_id) / "boot-finished"
        from bootseed.contract.atomicfile import atomic_write

        atomic_write(path, text, mode=0o644)
        self._mirror(cloudinit_files.write_boot_finished, self.target, path.parent.name, text)

    def _ready_overdue(self) -> None:
        message = (f"local stage still running after {READY_DEADLINE:.0f} s; READY=1 sent "
                   "so the boot goes on (it keeps running)")
        log.warning("%s", message)
        self.status.problems.append(Problem("systemd", message, Level.WARNING))
        self._notify_ready(f"local stage still running after {READY_DEADLINE:.0f} s")

    def _notify_ready(self, why: str = "local stage done") -> bool:
        from bootseed.late.sdnotify import notify

        with self._ready_lock:
            if self._ready_sent:
                return True
            self._ready_sent = True
        sent = notify(f"READY=1\nSTATUS={why}")
        log.debug("sd_notify READY=1: %s", "sent" if sent else "no NOTIFY_SOCKET or send failed")
        # Tried once is enough: a missing socket will not appear later in the run.
        return True

    def _wait_for_network(self) -> None:
        if self.opts.network_timeout <= 0:
            return
        from bootseed.late.netwait import wait_for_network

        waited = wait_for_network(self.opts.network_timeout, self.opts.proc)
        if waited.up:
            log.info("network up after %.2f s: %s", waited.waited, waited.detail)
        else:
            self.status.problems.append(Problem(
                "network", f"not up after {waited.waited:.1f} s ({waited.detail}); "
                           "continuing without it", Level.WARNING))

    def _write_status(self) -> None:
        write_status(self.run_dir, self.status, self.redactor)
        self._mirror(cloudinit_files.write_status, self.target, self.status, self.redactor)

    def _write_instance_data(self, data: dict[str, Any]) -> None:
        texts = write_instance_data(self.run_dir, data, self.redactor)
        self._mirror(cloudinit_files.write_instance_data, self.target, *texts)

    def _mirror(self, write: Callable[..., None], *args: Any) -> None:
        """cloud-init's view of the run (``cloudinit_files``): a failure to write it
        is a warning, never a reason for the run itself to fail."""
        try:
            write(*args)
        except (OSError, ValueError) as exc:
            where = f"cloud-init compatibility files ({write.__name__})"
            log.warning("%s: %s", where, exc)
            problem = Problem(where, f"not written: {exc}", Level.WARNING)
            if problem not in self.status.problems:
                self.status.problems.append(problem)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        path = self.run_dir / ".lock"
        try:
            with filelock.held(path, LOCK_TIMEOUT):
                yield
        except filelock.LockTimeout:
            raise RuntimeError(
                f"another bootseed run holds {path} for {LOCK_TIMEOUT:.0f} s") from None


def _validate_cached(built: BuiltConfig, registry: Registry, instance_dir: Path,
                     extra: tuple[ModuleSpec, ...]) -> list[Problem]:
    """Validation with the per-instance verdict cache; its modules (and jsonschema) are
    imported only here, after READY=1."""
    from bootseed.late.schemacache import CACHE_NAME
    from bootseed.late.userdata_flow import validate_built

    return validate_built(built, registry, instance_dir / CACHE_NAME, extra)


def run(options: RunOptions) -> RunStatus:
    return Runner(options).run()
