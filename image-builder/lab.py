"""The boot lab: boot an image under QEMU with a seed, and read what the guest says.

Python API (what the boot tests and ``bootseed-image boot`` use)::

    from bootseed.image_builder.lab import BootLab, BootOptions

    lab = BootLab(Path("out/bootseed-bookworm-amd64.raw"), workdir=Path("/tmp/run1"))
    result = lab.boot(BootOptions(nocloud_dir=Path("examples/nocloud"),
                                  report_files=["/etc/motd"]))
    result.ok                     # reached "done" with no module errors
    result.report.hostname        # probes from inside the guest
    result.sink_requests          # what the guest POSTed to the phone-home sink
    print(result.summary())

One boot:

1. a qcow2 overlay on the image (the image stays pristine), with this boot's
   kernel arguments written into its GRUB environment block (``overlay.py``);
2. lab servers on 127.0.0.1 (phone-home sink always; NoCloud seed server,
   EC2 or OpenStack metadata mock when asked), reachable from the guest only through
   ``guestfwd`` rules (``labnet.py``);
3. seed discs (cidata / OVF / config-2 ISOs) and extra disks attached;
4. QEMU with TCG, serial console to ``console.log``, a hard timeout; the lab
   report unit in the guest prints its report and powers off (``qemu.py``);
5. the report parsed from the console log (``serialreport.py``).

Reboots: ``BootOptions(reboots=N)`` lets the guest reboot after each of its
first N reports and power off after the next; ``result.reports`` then holds
one report per boot (``report.raw["boot_number"]`` 1, 2, ...), all from the
same overlay, so a test sees what survives a reboot.

Kernel arguments the lab adds: ``bootseed.lab=1`` (turns the report unit
on), ``bootseed.lab.files=...`` (files the report includes),
``ds=nocloud;s=http://169.254.100.1/`` with a NoCloud URL seed, and
``bootseed.ds=ec2`` only if asked (EC2 boots get EC2's DMI instead, so the
guest discovers the platform as it would on EC2; OpenStack boots likewise get
OpenStack Nova's DMI).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.image_builder import labnet, overlay, qemu
from bootseed.image_builder.disk import parse_size
from bootseed.image_builder.guest.report import WAIT_MARKER
from bootseed.image_builder.manifest import read_manifest
from bootseed.image_builder.mocks.httpbase import LoggedRequest, MockServer
from bootseed.image_builder.mocks.sink import PhoneHomeSink
from bootseed.image_builder.mocks.static import StaticServer
from bootseed.image_builder.mocks.syslogd import SyslogMessage, SyslogReceiver
from bootseed.image_builder.procrun import run as run_tool
from bootseed.image_builder.qmp import QmpClient
from bootseed.image_builder.serialreport import GuestReport, ReportError, extract_reports

DEFAULT_TIMEOUT = 300.0
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")


class LabError(Exception):
    """A boot could not be set up (bad option, missing piece); not a guest failure."""


@dataclass(frozen=True)
class ExtraDisk:
    label: str
    size: str
    # A blank disk (all zeros, sparse: what a cloud's fresh ephemeral disk looks like)
    # instead of one holding an ext4 filesystem labelled ``label``.
    blank: bool = False

    @classmethod
    def parse(cls, text: str) -> ExtraDisk:
        label, sep, size = text.partition(":")
        if not sep or not _LABEL_RE.match(label) or not size:
            raise LabError(f"--disk {text!r}: expected LABEL:SIZE, e.g. data:1G "
                           "(label: up to 16 of A-Z a-z 0-9 _ . -)")
        return cls(label=label, size=size)


@dataclass(frozen=True)
class ConsoleHook:
    """Something to do to the running guest once ``marker`` shows on its serial console:
    ``action`` gets a QMP client connected to the guest's QEMU (e.g. to hot-plug a disk
    with :func:`bootseed.image_builder.qmp.hot_add_disk`). ``GUEST_WAITING`` is the marker
    the report unit prints once bootseed's status is final, when ``wait_files`` is set."""

    marker: str
    action: Callable[[QmpClient], None]


GUEST_WAITING = WAIT_MARKER


@dataclass
class HookOutcome:
    marker: str
    fired_at: float | None = None  # seconds since QEMU started
    error: str = ""


@dataclass
class BootOptions:
    nocloud_dir: Path | None = None
    imds_dir: Path | None = None
    imds_mode: str = "v2-required"
    cidata_dir: Path | None = None
    ovf_file: Path | None = None
    config_drive_dir: Path | None = None
    disks: list[ExtraDisk] = field(default_factory=list)
    kernel_args: list[str] = field(default_factory=list)
    report_files: list[str] = field(default_factory=list)
    ec2_dmi: bool | None = None
    timeout: float = DEFAULT_TIMEOUT
    status_timeout: int = 240
    memory_mb: int = 1024
    cpus: int = 1
    allow_reboot: bool = False
    reboots: int = 0
    lab_report: bool = True
    # How the NoCloud URL goes on the kernel command line ({url} filled in);
    # cloud-init 22.4 wants "ds=nocloud-net;s={url}" for a URL it fetches
    # once the network is up.
    nocloud_cmdline: str = "ds=nocloud;s={url}"
    # The lab's signed Debian repository (guest: labnet.REPO_ADDR), with its HKP
    # keyserver (labnet.KEYSERVER_ADDR, port 11371) and a recording forward
    # proxy (labnet.PROXY_ADDR:3128) in front of it.
    apt_repo: Path | None = None
    apt_keys: dict[str, str] = field(default_factory=dict)  # fingerprint -> armoured key
    # An OpenStack metadata service (mocks/openstack.py) serving this directory's
    # meta_data.json, user_data, vendor_data*.json and network_data.json at
    # labnet.IMDS_ADDR, with OpenStack Nova's DMI (not with imds_dir).
    openstack_dir: Path | None = None
    # More guest address -> 127.0.0.1 relays for servers the test runs itself
    # (e.g. HTTPS servers at labnet.TLS_TRUSTED_ADDR / TLS_UNTRUSTED_ADDR).
    forwards: list[labnet.GuestForward] = field(default_factory=list)
    # A syslog receiver on the host, reached from the guest at labnet.syslog_url(); the
    # boot's kernel command line does not name it (the test adds bootseed.syslog=).
    syslog: bool = False
    # Grow the boot disk before the boot (``qemu-img resize`` of this boot's overlay, e.g.
    # "+3G"): the image on a bigger disk than it was built for, as a cloud gives it.
    grow_disk: str | None = None
    # Hooks run while the guest is up, each with a QMP client (QEMU then gets a QMP
    # socket); ``wait_files``: the report unit, once bootseed is done, prints
    # GUEST_WAITING and waits up to ``wait_timeout`` seconds for these guest paths.
    console_hooks: list[ConsoleHook] = field(default_factory=list)
    wait_files: list[str] = field(default_factory=list)
    wait_timeout: int = 120
    # Boot the same instance again: the root overlay of that earlier boot's directory
    # (``BootResult.workdir``) is booted on, and each of ``disks`` whose file that boot
    # had is attached as it was left (a disk left out of ``disks`` is gone).
    resume_from: Path | None = None
    # Host 127.0.0.1:PORT forwarded to the guest's sshd (port 22), for probes from the host.
    ssh_forward_port: int | None = None
    # "bios" (SeaBIOS) or "uefi" (OVMF); "": the image's own, BIOS when it has both.
    firmware: str = ""
    # NICs after the lab NIC (which keeps the relays and stays first): extra NIC n is
    # labnet.extra_nic_argument(n), MAC labnet.extra_nic_mac(n), a restricted network of
    # its own with no relays, for seeds that configure static addresses, bonds, VLANs.
    extra_nics: int = 0


@dataclass
class BootResult:
    workdir: Path
    console_log: Path
    seconds: float
    timed_out: bool
    qemu_returncode: int | None
    qemu_stderr: str
    kernel_args: str
    reports: list[GuestReport]
    report_error: str
    seed_given: bool
    sink_requests: list[LoggedRequest]
    seed_requests: list[LoggedRequest]
    imds_requests: list[LoggedRequest]
    # "repo", "keyserver", "proxy" when the boot had them.
    lab_requests: dict[str, list[LoggedRequest]] = field(default_factory=dict)
    # What the lab's syslog receiver got (BootOptions.syslog), in arrival order.
    syslog_messages: list[SyslogMessage] = field(default_factory=list)
    # One per BootOptions.console_hooks entry, in order.
    hooks: list[HookOutcome] = field(default_factory=list)

    @property
    def report(self) -> GuestReport | None:
        return self.reports[-1] if self.reports else None

    @property
    def ok(self) -> bool:
        """The guest reached "done" with no module errors (and found the seed it was given)."""
        report = self.report
        if report is None or not report.configured:
            return False
        return not (self.seed_given and report.no_seed)

    def console_text(self) -> str:
        return self.console_log.read_text(errors="replace")

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.timed_out:
            found.append(f"timed out after {self.seconds:.0f}s without the guest powering off")
        elif self.qemu_returncode not in (0, None):
            tail = self.qemu_stderr.strip().splitlines()[-1:] or ["no output"]
            found.append(f"QEMU exited {self.qemu_returncode}: {tail[0]}")
        if self.report_error:
            found.append(self.report_error)
        report = self.report
        if report is None:
            if not self.report_error:
                found.append("no report on the serial console")
            return found
        if report.status_problem:
            found.append(report.status_problem)
        elif report.not_run and not report.no_seed:
            found.append(f"bootseed did not run: {report.generator}")
        elif report.state not in ("done", "not-run"):
            found.append(f"bootseed ended in state {report.state!r}")
        if self.seed_given and report.no_seed:
            found.append("the lab gave the guest a seed but bootseed found none")
        for hook in self.hooks:
            if hook.error or hook.fired_at is None:
                found.append(f"console hook {hook.marker!r}: "
                             f"{hook.error or 'marker never seen'}")
        for module in report.module_errors:
            found.append(f"module {module.get('name')}: {module.get('error') or 'failed'}")
        for problem in report.problems:
            found.append(f"problem: {_one_line(problem)}")
        return found

    def summary(self) -> str:
        """A short human report of the boot."""
        report = self.report
        verdict = "CONFIGURED" if self.ok else "FAILED"
        lines = [f"boot: {verdict} in {self.seconds:.0f}s of wall time (console: "
                 f"{self.console_log})"]
        if report is not None:
            status = report.status or {}
            uptime = status.get("boot_finished_uptime")
            multi_user = report.raw.get("multi_user_reached")
            lines.append(
                f"  source: {status.get('source', '?')}  instance-id: "
                f"{status.get('instance_id', '?')}  state: {report.state}"
                + ("  (no seed)" if report.no_seed else "")
            )
            if report.generator:
                lines.append(f"  generator: {report.generator}")
            timing = []
            if isinstance(multi_user, (int, float)):
                timing.append(f"multi-user at {multi_user:.1f}s")
            if isinstance(uptime, (int, float)):
                timing.append(f"configured at {uptime:.1f}s")
            if timing:
                lines.append("  guest uptime: " + ", ".join(timing))
            stages = status.get("stages") or {}
            if stages:
                lines.append("  stages: " + ", ".join(
                    f"{name} {_stage_text(info)}" for name, info in stages.items()))
            if report.modules:
                lines.append("  modules: " + ", ".join(
                    f"{m.get('name')} {m.get('status')}" for m in report.modules))
            lines.append(f"  hostname: {report.hostname}  addresses: "
                         f"{', '.join(report.addresses) or 'none'}")
            for user in report.raw.get("users") or []:
                keys = user.get("authorized_keys")
                lines.append(f"  user: {user.get('name')} (groups: "
                             f"{' '.join(user.get('groups') or []) or '-'}; "
                             f"authorized keys: {len(keys) if keys is not None else 'none'})")
            for path, entry in sorted((report.raw.get("files") or {}).items()):
                if "error" in entry:
                    lines.append(f"  file: {path}: {entry['error']}")
                else:
                    lines.append(f"  file: {path}: {entry.get('size')} bytes, mode "
                                 f"{entry.get('mode')}")
        lines.append(f"  lab servers: seed {len(self.seed_requests)} requests, "
                     f"imds {len(self.imds_requests)}, phone-home {len(self.sink_requests)}")
        for request in self.sink_requests:
            lines.append(f"  phone-home: {request.method} {request.path} "
                         f"({len(request.body)} bytes)")
        problems = self.problems()
        lines.append("  problems: " + ("none" if not problems else ""))
        lines += [f"    - {p}" for p in problems]
        return "\n".join(lines)


def _check_paths(what: str, paths: list[str]) -> None:
    bad = [f for f in paths if "," in f or " " in f or not f.startswith("/")]
    if bad:
        raise LabError(f"{what} paths must be absolute, without commas or spaces: {bad}")


@contextlib.contextmanager
def _monitor_dir(wanted: bool) -> Iterator[Path | None]:
    """A short private directory for the QMP socket (a unix socket path has at most 107
    bytes; boot directories under pytest's tmp can be longer)."""
    if not wanted:
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="bootseed-qmp-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _hook_runner(hooks: list[ConsoleHook], outcomes: list[HookOutcome], console: Path,
                 socket_path: Path | None) -> Iterator[None]:
    """Watch the console log while QEMU runs; run each hook, in order, once its marker
    shows (after the previous hook's marker)."""
    if not hooks or socket_path is None:
        yield
        return
    stop = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        position = 0
        for hook, outcome in zip(hooks, outcomes, strict=True):
            while not stop.is_set():
                text = console.read_text(errors="replace") if console.exists() else ""
                found = text.find(hook.marker, position)
                if found >= 0:
                    position = found + len(hook.marker)
                    break
                stop.wait(0.5)
            if stop.is_set():
                return
            outcome.fired_at = round(time.monotonic() - started, 1)
            try:
                with QmpClient(socket_path) as client:
                    hook.action(client)
            except Exception as exc:  # a test's own code: whatever it raises is reported
                outcome.error = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=watch, name="lab-console-hooks", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text.replace("\n", " ")[:300]


def _stage_text(info: Any) -> str:
    if isinstance(info, dict):
        parts = [str(info.get("status") or info.get("state") or "")]
        duration = info.get("duration")
        if isinstance(duration, (int, float)):
            parts.append(f"{duration:.1f}s")
        return " ".join(p for p in parts if p) or "?"
    return str(info)


def _load_mock_imds() -> Any:
    try:
        from bootseed.image_builder.mocks import imds
    except ImportError:
        raise LabError("the EC2 metadata mock (bootseed.image_builder.mocks.imds) is not "
                       "available in this tree yet") from None
    return imds.MockImds


def _load_seeddisc() -> Any:
    try:
        from bootseed.image_builder import seeddisc
    except ImportError:
        raise LabError("seed discs need bootseed.image_builder.seeddisc, which is not "
                       "available in this tree yet") from None
    return seeddisc


class BootLab:
    """Boots one image, any number of times; each boot in its own subdirectory."""

    def __init__(self, image: Path, workdir: Path) -> None:
        self.image = image.resolve()
        self.workdir = workdir
        manifest = read_manifest(self.image)
        self.grubenv_offset = manifest.grubenv_offset
        self.image_firmware = manifest.firmware
        self.image_format = "qcow2" if self.image.suffix == ".qcow2" else "raw"
        self._boots = 0

    def _next_dir(self) -> Path:
        self._boots += 1
        path = self.workdir / f"boot-{self._boots:02d}-{int(time.time())}"
        path.mkdir(parents=True, exist_ok=False)
        return path

    def _attach_seed_discs(self, opts: BootOptions, bootdir: Path) -> list[qemu.Drive]:
        drives: list[qemu.Drive] = []
        wanted = [opts.cidata_dir, opts.ovf_file, opts.config_drive_dir]
        if not any(wanted):
            return drives
        seeddisc = _load_seeddisc()
        try:
            return self._make_seed_discs(seeddisc, opts, bootdir)
        except seeddisc.SeedDiscError as exc:
            raise LabError(f"seed disc: {exc}") from None

    @staticmethod
    def _make_seed_discs(seeddisc: Any, opts: BootOptions, bootdir: Path) -> list[qemu.Drive]:
        drives: list[qemu.Drive] = []
        if opts.cidata_dir is not None:
            iso = bootdir / "cidata.iso"
            files = {p.name: p.read_bytes() for p in sorted(opts.cidata_dir.iterdir())
                     if p.is_file()}
            seeddisc.make_cidata_iso(iso, files)
            drives.append(qemu.Drive(iso, fmt="raw", interface="ide", media="cdrom",
                                     readonly=True))
        if opts.ovf_file is not None:
            iso = bootdir / "ovf-env.iso"
            seeddisc.make_ovf_iso(iso, opts.ovf_file.read_bytes())
            drives.append(qemu.Drive(iso, fmt="raw", interface="ide", media="cdrom",
                                     readonly=True))
        if opts.config_drive_dir is not None:
            iso = bootdir / "config-2.iso"
            meta = opts.config_drive_dir / "meta_data.json"
            user = opts.config_drive_dir / "user_data"
            network = opts.config_drive_dir / "network_data.json"
            seeddisc.make_config_drive_iso(
                iso, json.loads(meta.read_text()) if meta.is_file() else {},
                user.read_bytes() if user.is_file() else None,
                network_data=json.loads(network.read_text()) if network.is_file() else None)
            drives.append(qemu.Drive(iso, fmt="raw", interface="ide", media="cdrom",
                                     readonly=True))
        return drives

    def firmware(self, opts: BootOptions) -> str:
        """"bios" or "uefi": what this boot starts the image with."""
        can = {"bios": ("bios",), "uefi": ("uefi",), "both": ("bios", "uefi")}.get(
            self.image_firmware, ())
        if not can:
            raise LabError(f"{self.image}: its manifest names an unknown firmware "
                           f"{self.image_firmware!r}")
        wanted = opts.firmware or can[0]
        if wanted not in can:
            raise LabError(f"{self.image} is a {self.image_firmware} image: it cannot boot "
                           f"with {wanted!r} firmware")
        return wanted

    @staticmethod
    def _uefi(bootdir: Path) -> qemu.UefiFirmware:
        for path in (qemu.OVMF_CODE, qemu.OVMF_VARS):
            if not path.is_file():
                raise LabError(f"UEFI boots need OVMF ({path} is missing: apt-get install ovmf)")
        variables = bootdir / "OVMF_VARS.fd"
        shutil.copyfile(qemu.OVMF_VARS, variables)
        return qemu.UefiFirmware(code=qemu.OVMF_CODE, variables=variables)

    @staticmethod
    def extra_nic_arguments(opts: BootOptions) -> list[str]:
        """QEMU arguments for ``opts.extra_nics`` NICs after the lab NIC."""
        if not 0 <= opts.extra_nics <= labnet.MAX_EXTRA_NICS:
            raise LabError(f"extra_nics {opts.extra_nics}: the lab has 0 to "
                           f"{labnet.MAX_EXTRA_NICS}")
        args: list[str] = []
        for number in range(1, opts.extra_nics + 1):
            args += ["-nic", labnet.extra_nic_argument(number)]
        return args

    def kernel_args(self, opts: BootOptions) -> str:
        args: list[str] = []
        if opts.lab_report:
            args.append("bootseed.lab=1")
            # The report is the serial console's last writer; a login prompt
            # there can only interleave with it.
            args.append("systemd.mask=serial-getty@ttyS0.service")
            # The lab network reaches no NTP server, so a wait for clock sync can only
            # time out (3 minutes). It runs where systemd's first boot could apply the
            # distribution's presets ("enable *"): a root that is writable from the start,
            # such as bootseed's overlay root.
            args.append("systemd.mask=chrony-wait.service")
            args.append(f"bootseed.lab.status_timeout={opts.status_timeout}")
            if opts.report_files:
                _check_paths("report file", opts.report_files)
                args.append("bootseed.lab.files=" + ",".join(opts.report_files))
            if opts.wait_files:
                _check_paths("wait files", opts.wait_files)
                args.append("bootseed.lab.wait=" + ",".join(opts.wait_files))
                args.append(f"bootseed.lab.wait_timeout={opts.wait_timeout}")
            if opts.reboots:
                args.append(f"bootseed.lab.reboots={opts.reboots}")
            elif opts.allow_reboot:
                args.append("bootseed.lab.poweroff=0")
        if opts.nocloud_dir is not None:
            args.append(opts.nocloud_cmdline.format(url=labnet.seed_url()))
        args += opts.kernel_args
        return " ".join(args)

    def boot(self, opts: BootOptions) -> BootResult:
        firmware = self.firmware(opts)
        bootdir = self._next_dir()
        if opts.resume_from is not None:
            disk = opts.resume_from / "disk.qcow2"
            if not disk.is_file():
                raise LabError(f"resume_from {opts.resume_from}: no disk.qcow2 there")
        else:
            disk = bootdir / "disk.qcow2"
            overlay.create_overlay(self.image, self.image_format, disk)
        if opts.grow_disk:
            if not re.fullmatch(r"\+[0-9]+[KMGT]?", opts.grow_disk):
                raise LabError(f"grow_disk {opts.grow_disk!r}: expected +SIZE, e.g. +3G")
            run_tool(["qemu-img", "resize", "-q", "-f", "qcow2", str(disk), opts.grow_disk])
        args = self.kernel_args(opts)
        overlay.set_kernel_args(disk, self.grubenv_offset, args, bootdir / "grubenv.block")
        uefi = self._uefi(bootdir) if firmware == "uefi" else None
        drives = [qemu.Drive(disk, fmt="qcow2", bootindex=0 if uefi else None)]
        for extra in opts.disks:
            name = f"disk-{extra.label}.raw"
            earlier = opts.resume_from / name if opts.resume_from is not None else None
            if earlier is not None and earlier.is_file():
                path = earlier
            elif extra.blank:
                path = bootdir / name
                with open(path, "wb") as handle:
                    handle.truncate(parse_size(extra.size))
            else:
                path = bootdir / name
                overlay.make_data_disk(path, extra.label, extra.size)
            drives.append(qemu.Drive(path, fmt="raw"))
        drives += self._attach_seed_discs(opts, bootdir)
        hooks = [HookOutcome(hook.marker) for hook in opts.console_hooks]
        with self._servers(opts) as servers, _monitor_dir(bool(hooks)) as monitor:
            spec = qemu.VmSpec(
                drives=drives,
                nic=labnet.nic_argument(servers.forwards, relay=labnet.relay_program(),
                                        ssh_forward_port=opts.ssh_forward_port),
                console_log=bootdir / "console.log",
                memory_mb=opts.memory_mb,
                cpus=opts.cpus,
                allow_reboot=opts.allow_reboot or opts.reboots > 0,
                smbios=self._smbios(opts),
                uefi=uefi,
            )
            spec.extra += self.extra_nic_arguments(opts)
            socket_path = monitor / "qmp.sock" if monitor else None
            if socket_path is not None:
                spec.extra += ["-qmp", f"unix:{socket_path},server=on,wait=off"]
            (bootdir / "qemu.argv.json").write_text(json.dumps(spec.argv(), indent=1) + "\n")
            with _hook_runner(opts.console_hooks, hooks, spec.console_log, socket_path):
                outcome = qemu.run_vm(spec.argv(), opts.timeout, bootdir / "qemu.stderr")
            sink, seed, imds = servers.snapshot()
            lab_requests = servers.apt_snapshot()
            syslog_messages = servers.syslog.snapshot() if servers.syslog is not None else []
        console = spec.console_log.read_text(errors="replace") if spec.console_log.exists() \
            else ""
        report_error = ""
        try:
            reports = extract_reports(console)
        except ReportError as exc:
            reports, report_error = [], str(exc)
        result = BootResult(
            workdir=bootdir,
            console_log=spec.console_log,
            seconds=outcome.seconds,
            timed_out=outcome.timed_out,
            qemu_returncode=outcome.returncode,
            qemu_stderr=outcome.stderr,
            kernel_args=args,
            reports=reports,
            report_error=report_error,
            seed_given=self.seed_given(opts),
            sink_requests=sink,
            seed_requests=seed,
            imds_requests=imds,
            lab_requests=lab_requests,
            syslog_messages=syslog_messages,
            hooks=hooks,
        )
        (bootdir / "result.json").write_text(json.dumps(
            {"ok": result.ok, "seconds": result.seconds, "timed_out": result.timed_out,
             "problems": result.problems(), "kernel_args": args, "firmware": firmware,
             "report": result.report.raw if result.report else None}, indent=2) + "\n")
        return result

    @staticmethod
    def seed_given(opts: BootOptions) -> bool:
        return any(v is not None for v in (opts.nocloud_dir, opts.imds_dir, opts.cidata_dir,
                                           opts.ovf_file, opts.config_drive_dir,
                                           opts.openstack_dir))

    @staticmethod
    def _ec2_dmi(opts: BootOptions) -> bool:
        return opts.imds_dir is not None if opts.ec2_dmi is None else opts.ec2_dmi

    @classmethod
    def _smbios(cls, opts: BootOptions) -> qemu.SmbiosSystem | None:
        if cls._ec2_dmi(opts):
            return qemu.EC2_SMBIOS
        return qemu.OPENSTACK_SMBIOS if opts.openstack_dir is not None else None

    @contextlib.contextmanager
    def _servers(self, opts: BootOptions) -> Iterator[_Servers]:
        servers = _Servers()
        try:
            servers.sink = PhoneHomeSink().start()
            servers.forwards.append(labnet.GuestForward(labnet.SINK_ADDR, labnet.HTTP_PORT,
                                                        _port(servers.sink)))
            if opts.nocloud_dir is not None:
                if not opts.nocloud_dir.is_dir():
                    raise LabError(f"--nocloud-url {opts.nocloud_dir}: not a directory")
                servers.seed = StaticServer(opts.nocloud_dir).start()
                servers.forwards.append(labnet.GuestForward(
                    labnet.SEED_ADDR, labnet.HTTP_PORT, _port(servers.seed)))
            if opts.imds_dir is not None:
                if not opts.imds_dir.is_dir():
                    raise LabError(f"--imds {opts.imds_dir}: not a directory")
                mock_cls = _load_mock_imds()
                servers.imds = mock_cls.from_seed_dir(opts.imds_dir, mode=opts.imds_mode)
                servers.imds.start()
                servers.forwards.append(labnet.GuestForward(
                    labnet.IMDS_ADDR, labnet.HTTP_PORT, _port(servers.imds)))
            if opts.openstack_dir is not None:
                servers.imds = self._start_openstack(opts)
                servers.forwards.append(labnet.GuestForward(
                    labnet.IMDS_ADDR, labnet.HTTP_PORT, _port(servers.imds)))
            if opts.apt_repo is not None:
                self._start_apt_servers(opts.apt_repo, opts.apt_keys, servers)
            servers.forwards += opts.forwards
            if opts.syslog:
                servers.syslog = SyslogReceiver().start()
                servers.forwards.append(labnet.GuestForward(
                    labnet.SYSLOG_ADDR, labnet.SYSLOG_PORT, servers.syslog.port))
            yield servers
        finally:
            servers.stop()

    @staticmethod
    def _start_openstack(opts: BootOptions) -> MockServer:
        from bootseed.image_builder.mocks.openstack import MockOpenStack

        assert opts.openstack_dir is not None
        if opts.imds_dir is not None:
            raise LabError("--imds and an OpenStack metadata service both want "
                           f"{labnet.IMDS_ADDR}; choose one")
        if not opts.openstack_dir.is_dir():
            raise LabError(f"OpenStack seed {opts.openstack_dir}: not a directory")
        try:
            return MockOpenStack.from_seed_dir(opts.openstack_dir).start()
        except (OSError, ValueError) as exc:
            raise LabError(f"OpenStack seed {opts.openstack_dir}: {exc}") from None

    @staticmethod
    def _start_apt_servers(repo: Path, keys: dict[str, str], servers: _Servers) -> None:
        from bootseed.image_builder.mocks.keyserver import HkpKeyserver
        from bootseed.image_builder.mocks.proxy import ForwardProxy

        if not (repo / "dists").is_dir():
            raise LabError(f"apt repository {repo}: no dists/ in it")
        servers.repo = StaticServer(repo).start()
        servers.keyserver = HkpKeyserver(keys).start()
        route = {f"{labnet.REPO_ADDR}:{labnet.HTTP_PORT}": _port(servers.repo)}
        servers.proxy = ForwardProxy(route).start()
        servers.forwards += [
            labnet.GuestForward(labnet.REPO_ADDR, labnet.HTTP_PORT, _port(servers.repo)),
            labnet.GuestForward(labnet.KEYSERVER_ADDR, labnet.HKP_PORT, _port(servers.keyserver)),
            labnet.GuestForward(labnet.PROXY_ADDR, labnet.PROXY_PORT, _port(servers.proxy)),
        ]


def _port(server: MockServer) -> int:
    return int(server.server_address[1])


@dataclass
class _Servers:
    forwards: list[labnet.GuestForward] = field(default_factory=list)
    sink: MockServer | None = None
    seed: MockServer | None = None
    imds: Any = None
    repo: MockServer | None = None
    keyserver: MockServer | None = None
    proxy: MockServer | None = None
    syslog: SyslogReceiver | None = None

    def snapshot(self) -> tuple[list[LoggedRequest], list[LoggedRequest], list[LoggedRequest]]:
        def requests(server: Any) -> list[LoggedRequest]:
            return list(server.requests) if server is not None else []

        return requests(self.sink), requests(self.seed), requests(self.imds)

    def apt_snapshot(self) -> dict[str, list[LoggedRequest]]:
        found = {"repo": self.repo, "keyserver": self.keyserver, "proxy": self.proxy}
        return {name: list(server.requests) for name, server in found.items()
                if server is not None}

    def stop(self) -> None:
        for server in (self.sink, self.seed, self.imds, self.repo, self.keyserver, self.proxy,
                       self.syslog):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
