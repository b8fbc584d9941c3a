"""The initramfs SSH server: reach a machine whose root will not mount (``bootseed.sshd``).

initramfs-tools calls ``panic`` when the root device never shows up, when ``fsck``
fails on it, when it cannot be mounted, and when the mounted root holds no init; panic
runs the ``scripts/panic`` hooks and then an interactive shell on the console, which on
a cloud nobody can reach. bootseed's panic hook runs ``rescue`` here: bring the network
up (the seed fetch's own code, :mod:`bootseed.early.net`), generate this instance's
host key (ed25519, with Debian's ``dropbearkey``; never in the image), authorise the
instance's own keys (:mod:`bootseed.early.sshdkeys`), start Debian's ``dropbear``, print
the fingerprints and the address on the console, and wait until ``bootseed-continue`` is
run in an SSH session. Then it tells the initramfs how to go on, through the one channel
initramfs-tools gives hooks into its own shell: ``/conf/param.conf``, which it sources
after every boot script (see :func:`param_conf_text`), and returns.

Verbs (``python3 -m bootseed.early sshd VERB``): ``start`` (``bootseed.sshd=always``,
from init-premount), ``rescue`` (the panic hook), ``continue`` (``bootseed-continue`` in
the session), ``stop`` (init-bottom: the server, its network and its keys are gone
before the real root's init starts).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bootseed.contract.cli import CliError, Verb
from bootseed.contract.seedcache import DEFAULT_SEED_DIR

STATE_DIR = "/run/bootseed-sshd"
FALLBACK_KEYS = "/etc/bootseed/initramfs-authorized-keys"
DROPBEAR = "/usr/sbin/dropbear"
DROPBEARKEY = "/usr/bin/dropbearkey"
PORT = 22
POLL_S = 0.5
HANDOVER_GRACE_S = 1.0
CONTINUE_COMMAND = "bootseed-continue"
LEAVE = "leave"
# What panic said, by the initramfs-tools 0.142 message that says it.
REASONS = (
    ("does not exist", "missing-device"),
    ("requires a manual fsck", "fsck"),
    ("Failed to mount", "mount"),
    ("No init found", "no-init"),
)
# A root device as resolve_device in initramfs-tools accepts it, safe in a shell word.
_DEVICE = re.compile(r"(/dev/|LABEL=|UUID=|PARTLABEL=|PARTUUID=)[A-Za-z0-9/_.:+@-]+\Z")


@dataclass(frozen=True)
class Layout:
    """Where the server keeps its state; everything under one directory of ``/run``."""

    state_dir: Path = Path(STATE_DIR)

    @property
    def home(self) -> Path:
        return self.state_dir / "home"

    @property
    def authorized_keys(self) -> Path:
        return self.home / ".ssh" / "authorized_keys"

    @property
    def host_key(self) -> Path:
        return self.state_dir / "host_ed25519"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "dropbear.pid"

    @property
    def log(self) -> Path:
        return self.state_dir / "dropbear.log"

    @property
    def session(self) -> Path:
        """What this server did (address, fingerprint, keys by source, reason, hand-over)."""
        return self.state_dir / "session.json"

    @property
    def network(self) -> Path:
        return self.state_dir / "network.json"

    @property
    def reason(self) -> Path:
        return self.state_dir / "reason"

    @property
    def continue_request(self) -> Path:
        return self.state_dir / "continue.json"

    @property
    def leave_marker(self) -> Path:
        return self.state_dir / "leave-shell"

    @property
    def leave_script(self) -> Path:
        return self.state_dir / "leave-shell.sh"


@dataclass
class ServerOptions:
    layout: Layout
    seed_dir: str = DEFAULT_SEED_DIR
    fallback_keys: str = FALLBACK_KEYS
    dropbear: str = DROPBEAR
    dropbearkey: str = DROPBEARKEY
    port: int = PORT
    # Listen on this address only (tests: 127.0.0.1); None: every address.
    listen_address: str | None = None
    etc: str = "/etc"
    cmdline: str | None = None
    sys_class_net: str = "/sys/class/net"
    resolv_conf: str | None = "/etc/resolv.conf"
    net_backend: str = "auto"
    carrier_timeout: float = 5.0
    dhcp_timeout: float = 15.0
    bring_up_network: bool = True
    kmsg: bool = False


@dataclass
class Session:
    """``session.json``: enough to find, check and tear down the server later."""

    pid: int
    port: int
    fingerprint: str
    address: str | None
    interface: str | None
    keys: dict[str, int]
    reason: str | None = None
    handed_over: str | None = None


def classify(reason: str) -> str:
    for text, kind in REASONS:
        if text in reason:
            return kind
    return "other"


def diagnose(root: str | None, rootmnt: str, mounts: str = "/proc/mounts",
             fsck_dir: str = "/run/initramfs") -> tuple[str, str]:
    """Why the boot stopped, from what is on the machine: ``(kind, description)``.

    initramfs-tools 0.142 runs the panic hooks without panic's message, so the hook
    looks for itself, in the order the boot got there: a mounted root (only a missing
    init panics after the mount), a root device that does not resolve, an ``fsck`` that
    logged without leaving its success stamp, else a mount that failed. ``root`` is
    init's exported ``ROOT``: ``root=`` as given until the device is found, the device
    after.
    """
    mounted = mounted_source(rootmnt, mounts)
    if mounted is not None:
        return "no-init", f"{mounted} is mounted on {rootmnt} but holds no init"
    if not root:
        return "other", "no root= on the kernel command line"
    if not _resolves(root):
        return "missing-device", f"the root device {root} does not exist"
    if (Path(fsck_dir) / "fsck.log").exists() and not (Path(fsck_dir) / "fsck-root").exists():
        return "fsck", f"the root filesystem on {root} failed its fsck"
    return "mount", f"{root} could not be mounted as the root filesystem"


def _resolves(root: str) -> bool:
    if root.startswith("/"):
        return Path(root).exists()
    if "=" not in root:
        return True  # a name initramfs-tools does not wait for (mtd0, ubi...)
    try:
        proc = subprocess.run(["blkid", "-l", "-t", root, "-o", "device"], capture_output=True,
                              text=True, timeout=30, check=False)
    except OSError:
        return False
    return proc.returncode == 0 and Path(proc.stdout.strip() or "/nonexistent").exists()


def console(line: str, kmsg: bool = False) -> None:
    """To the console (the panic hook's stdout is it) and, optionally, the kernel log."""
    print(line, flush=True)
    if kmsg:
        try:
            with open("/dev/kmsg", "w", encoding="utf-8") as handle:
                handle.write(f"<5>{line}\n")
        except OSError:
            pass


def running_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pidfile.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def read_session(layout: Layout) -> Session | None:
    try:
        return Session(**json.loads(layout.session.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_session(layout: Layout, session: Session) -> None:
    layout.session.write_text(json.dumps(asdict(session), indent=2, sort_keys=True) + "\n")


def sshd_mode(cmdline: str | None) -> str:
    from bootseed.contract.cmdline import parse

    text = cmdline if cmdline is not None else _read("/proc/cmdline")
    params = parse(text)
    return "off" if not params.early.enabled else params.sshd.mode


def start(options: ServerOptions) -> Session | None:
    """Start the server unless it runs already; None (and a console line) when it cannot
    be started, in which case the caller leaves the console to initramfs-tools."""
    layout = options.layout
    session = read_session(layout)
    if running_pid(layout) is not None and session is not None:
        return session
    from bootseed.early import sshdkeys

    layout.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = sshdkeys.assemble(options.seed_dir, options.fallback_keys)
    for problem in keys.problems:
        console(f"bootseed-sshd: {problem.where}: {problem.message}", options.kmsg)
    if not keys.keys:
        console("bootseed-sshd: no SSH key in the seed cache nor in the image: not started",
                options.kmsg)
        return None
    for path in (layout.home, layout.authorized_keys.parent):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_private(layout.authorized_keys, keys.text())
    _ensure_root_account(Path(options.etc), layout.home)
    fingerprint = generate_host_key(options.dropbearkey, layout.host_key)
    address, interface = _network(options)
    pid = _spawn_dropbear(options)
    session = Session(pid=pid, port=options.port, fingerprint=fingerprint, address=address,
                      interface=interface, keys=keys.sources)
    write_session(layout, session)
    return session


def generate_host_key(dropbearkey: str, path: Path) -> str:
    """A fresh ed25519 host key at ``path``; returns its SHA256 fingerprint line."""
    if path.exists():
        path.unlink()
    proc = subprocess.run([dropbearkey, "-t", "ed25519", "-f", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dropbearkey failed: {(proc.stderr or proc.stdout).strip()}")
    for line in proc.stdout.splitlines():
        if line.startswith("Fingerprint:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("dropbearkey printed no fingerprint")


def banner(session: Session, reason: str | None) -> list[str]:
    where = session.address.split("/")[0] if session.address else "this machine's address"
    lines = ["bootseed-sshd: " + (f"the root did not mount ({reason})" if reason
                                  else "initramfs SSH server running")]
    lines.append(f"bootseed-sshd: ssh root@{where} -p {session.port}"
                 + (f" (interface {session.interface})" if session.interface else ""))
    lines.append(f"bootseed-sshd: host key ED25519 {session.fingerprint}")
    lines.append("bootseed-sshd: keys: " + ", ".join(f"{name} {count}" for name, count
                                                     in session.keys.items()))
    if reason:
        lines.append(f"bootseed-sshd: fix the root (fsck, mount it on /root), then run "
                     f"{CONTINUE_COMMAND} [DEVICE]; waiting")
    return lines


def rescue(options: ServerOptions, message: str, rootmnt: str, param_conf: Path,
           root: str | None = None, mounts: str = "/proc/mounts",
           fsck_dir: str = "/run/initramfs") -> int:
    """The panic hook: serve, wait for ``bootseed-continue``, hand over. 0 when handed over;
    1 when no server could be started (the console shell follows, as without bootseed).
    ``message``: panic's, when the initramfs passes it (else :func:`diagnose` decides)."""
    layout = options.layout
    layout.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in (layout.continue_request, layout.leave_marker):
        stale.unlink(missing_ok=True)
    kind = classify(message)
    if kind == "other":
        kind, reason = diagnose(root, rootmnt, mounts, fsck_dir)
    else:
        reason = message
    layout.reason.write_text(f"{kind}\n{reason}\n")
    moved = Path(rootmnt) / options.seed_dir.lstrip("/")
    if not (Path(options.seed_dir) / "seed.json").exists() and (moved / "seed.json").exists():
        # "No init found" comes after init moved /run onto the root: the cache went too.
        options.seed_dir = str(moved)
    try:
        session = start(options)
    except Exception as exc:
        console(f"bootseed-sshd: cannot start: {type(exc).__name__}: {exc}", options.kmsg)
        return 1
    if session is None:
        return 1
    for line in banner(session, reason):
        console(line, options.kmsg)
    request = wait_for_continue(layout)
    device = request.get("device")
    text = param_conf_text(layout, kind, device if isinstance(device, str) else None)
    with open(param_conf, "a", encoding="ascii") as handle:
        handle.write(text)
    layout.leave_script.write_text(leave_script_text(layout))
    layout.leave_marker.write_text(f"{LEAVE}\n")
    session.reason = reason
    session.handed_over = device if isinstance(device, str) else rootmnt
    write_session(layout, session)
    console(f"bootseed-sshd: {CONTINUE_COMMAND}: the boot goes on"
            + (f" with root {device}" if isinstance(device, str) else ""), options.kmsg)
    if kind == "no-init":
        # init-bottom, which stops the server, has run already: stop it here, once the
        # session has had a moment to read bootseed-continue's answer.
        time.sleep(HANDOVER_GRACE_S)
        console(f"bootseed-sshd: {stop(layout)}", options.kmsg)
    return 0


def wait_for_continue(layout: Layout, poll: float = POLL_S) -> dict[str, object]:
    while True:
        try:
            request = json.loads(layout.continue_request.read_text())
        except FileNotFoundError:
            time.sleep(poll)
            continue
        except ValueError:
            request = {}
        layout.continue_request.unlink(missing_ok=True)
        return request if isinstance(request, dict) else {}


def param_conf_text(layout: Layout, kind: str, device: str | None) -> str:
    """What the panic hook appends to ``/conf/param.conf`` when the session says go on.

    initramfs-tools sources that file in its own shell after every boot script, so:
    ``dev_id`` is the variable the wait loop in ``local_device_setup`` (scripts/local)
    looks the root up by on each round after ``panic`` returns (the panic hooks run inside
    that function's dynamic scope, so the assignment reaches its ``local``); ``ENV`` makes
    the console shell panic starts next run ``leave-shell.sh`` and exit at once, so the
    boot goes on without anyone at the console. The ``ENV`` line is written so that once
    the marker is gone (the shell exited, or init-bottom stopped the server) the next
    sourcing unsets it again.
    """
    lines = ["# bootseed-sshd: hand-over from the SSH rescue session (bootseed-continue)\n"]
    if device is not None and kind == "missing-device":
        if not _DEVICE.match(device):
            raise ValueError(f"not a root device: {device!r}")
        lines.append(f"dev_id='{device}'\n")
    lines.append(_read_marker(layout))
    lines.append(f'if [ "$bootseed_leave" = {LEAVE} ]; then export ENV={layout.leave_script}; '
                 "else unset ENV; fi\n")
    return "".join(lines)


def leave_script_text(layout: Layout) -> str:
    """Run by the console shell through ``ENV``: it exits once, then the marker is spent.
    Shell builtins only (an initramfs without busybox has no ``rm``)."""
    return (_read_marker(layout)
            + f'if [ "$bootseed_leave" = {LEAVE} ]; then echo spent >{layout.leave_marker}; '
            "exit 0; fi\n")


def _read_marker(layout: Layout) -> str:
    return (f"bootseed_leave=; [ -r {layout.leave_marker} ] && "
            f"read -r bootseed_leave <{layout.leave_marker}\n")


def request_continue(layout: Layout, device: str | None, rootmnt: str,
                     mounts: str = "/proc/mounts") -> str:
    """``bootseed-continue [DEVICE]``: tell the waiting panic hook to go on; returns what
    will happen. Raises CliError when nothing waits or the request cannot work."""
    try:
        kind, _, reason = layout.reason.read_text().strip().partition("\n")
    except FileNotFoundError:
        raise CliError("nothing is waiting: the boot did not stop in the initramfs") from None
    if device is not None and not _DEVICE.match(device):
        raise CliError(f"{device}: expected /dev/NAME, LABEL=, UUID=, PARTLABEL= or PARTUUID=",
                       exit_code=2)
    mounted = mounted_source(rootmnt, mounts)
    if mounted is not None and not _DEVICE.match(mounted):
        raise CliError(f"{rootmnt} holds {mounted}, not a block device", exit_code=2)
    if kind in ("missing-device", "fsck"):
        # initramfs-tools checks and mounts the root itself when panic returns: a hand
        # mount would make its fsck fail, so it is taken down (the device is remembered).
        if mounted is not None:
            proc = subprocess.run(["umount", rootmnt], capture_output=True, text=True,
                                  timeout=60, check=False)
            if proc.returncode != 0:
                raise CliError(f"umount {rootmnt}: {(proc.stderr or proc.stdout).strip()}")
        device = device or mounted
        if kind == "missing-device" and device is None:
            raise CliError(f"the root device was not found ({reason}): name it "
                           f"({CONTINUE_COMMAND} /dev/vda1) or mount it on {rootmnt} first",
                           exit_code=2)
        what = (f"the initramfs checks and mounts {device} as the root" if device
                else "the initramfs runs its fsck of the root again")
    else:
        if mounted is None:
            raise CliError(f"nothing is mounted on {rootmnt}: mount the root there first "
                           f"({reason})", exit_code=2)
        what = f"the boot goes on with {mounted} on {rootmnt}"
    tmp = layout.continue_request.with_suffix(".tmp")
    tmp.write_text(json.dumps({"device": device}) + "\n")
    os.replace(tmp, layout.continue_request)
    return what


def mounted_source(mountpoint: str, mounts: str = "/proc/mounts") -> str | None:
    """The device mounted on ``mountpoint`` (the last mount wins), or None."""
    found = None
    for line in _read(mounts).splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] == mountpoint.rstrip("/"):
            found = fields[0]
    return found


def stop(layout: Layout) -> str:
    """Before the root switch: end the server (and its sessions), take its network down
    and remove its keys; ``session.json`` stays as the record."""
    done = []
    pid = running_pid(layout)
    if pid is not None:
        try:
            os.killpg(os.getpgid(pid), signal.SIGTERM)
        except OSError:
            os.kill(pid, signal.SIGTERM)
        done.append(f"dropbear {pid} stopped")
    network = _read_json(layout.network)
    if network:
        from bootseed.early import net

        state = net.NetState(**network)
        try:
            done.append(f"network: {net.tear_down(state, net.make_backend(state.backend))}")
        except Exception as exc:
            done.append(f"network tear-down failed: {exc}")
    for path in (layout.host_key, layout.authorized_keys, layout.pidfile, layout.leave_marker,
                 layout.continue_request):
        path.unlink(missing_ok=True)
    return "; ".join(done) or "nothing was running"


def _network(options: ServerOptions) -> tuple[str | None, str | None]:
    """Bring the network up as the seed fetch does, unless bootseed.net=off."""
    from bootseed.contract.cmdline import parse

    params = parse(options.cmdline if options.cmdline is not None else _read("/proc/cmdline"))
    if not options.bring_up_network or params.net.off:
        return None, None
    from bootseed.early import net
    from bootseed.early.ipconfig import select_ip

    ip, _errors = select_ip(params.net.ip_values)
    request = net.NetRequest(ip=ip, device=params.net.device,
                             carrier_timeout=options.carrier_timeout,
                             dhcp_timeout=options.dhcp_timeout,
                             sys_class_net=options.sys_class_net,
                             resolv_conf=options.resolv_conf, backend=options.net_backend)
    try:
        state = net.bring_up(request, net.make_backend(options.net_backend))
    except net.NetworkError as exc:
        console(f"bootseed-sshd: network: {exc}; listening anyway", options.kmsg)
        options.layout.network.write_text(json.dumps(exc.state.as_dict()) + "\n")
        return None, exc.state.interface
    options.layout.network.write_text(json.dumps(state.as_dict()) + "\n")
    return state.address, state.interface


def _spawn_dropbear(options: ServerOptions) -> int:
    layout = options.layout
    listen = (f"{options.listen_address}:{options.port}" if options.listen_address
              else str(options.port))
    argv = [options.dropbear, "-F", "-E", "-s", "-j", "-k", "-m",
            "-r", str(layout.host_key), "-p", listen, "-P", str(layout.pidfile)]
    with open(layout.log, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    layout.pidfile.write_text(f"{proc.pid}\n")
    # dropbear refuses to start (port taken, bad key) within moments; say so now.
    time.sleep(0.3)
    if proc.poll() is not None:
        raise RuntimeError(f"dropbear exited with {proc.returncode}: "
                           f"{_read(str(layout.log)).strip()[-300:]}")
    return proc.pid


def _ensure_root_account(etc: Path, home: Path) -> None:
    """root with its home under /run: the initramfs's /root is where the root mounts."""
    passwd = etc / "passwd"
    lines = [line for line in _read(str(passwd)).splitlines() if not line.startswith("root:")]
    etc.mkdir(parents=True, exist_ok=True)
    passwd.write_text("\n".join([f"root:x:0:0:root:{home}:/bin/sh", *lines]) + "\n")
    group = etc / "group"
    if not group.exists():
        group.write_text("root:x:0:\n")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


HELP = "the initramfs SSH server for a root that will not mount (bootseed.sshd)"
DESCRIPTION = ("start: start the server (bootseed.sshd=always); rescue: the panic hook (serve, "
               "wait for bootseed-continue, hand over); continue: what bootseed-continue runs; "
               "stop: end the server before the root switch.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("start", "rescue", "continue", "stop"))
    parser.add_argument("device", nargs="?", help="continue: the root device to boot")
    parser.add_argument("--reason", default="", help="rescue: panic's message, if known")
    parser.add_argument("--rootmnt", default="/root")
    parser.add_argument("--param-conf", default="/conf/param.conf")
    parser.add_argument("--state-dir", default=STATE_DIR)
    parser.add_argument("--seed-dir", default=DEFAULT_SEED_DIR)
    parser.add_argument("--fallback-keys", default=FALLBACK_KEYS)
    parser.add_argument("--cmdline", help="kernel command line instead of /proc/cmdline")
    parser.add_argument("--kmsg", action="store_true", help="also log to /dev/kmsg")


def run_command(args: argparse.Namespace) -> int:
    layout = Layout(Path(args.state_dir))
    if args.action == "continue":
        print(f"{CONTINUE_COMMAND}: {request_continue(layout, args.device, args.rootmnt)}")
        return 0
    if args.action == "stop":
        console(f"bootseed-sshd: {stop(layout)}", args.kmsg)
        return 0
    mode = sshd_mode(args.cmdline)
    if mode == "off" or (args.action == "start" and mode != "always"):
        return 1 if args.action == "rescue" else 0
    options = ServerOptions(layout=layout, seed_dir=args.seed_dir,
                            fallback_keys=args.fallback_keys, cmdline=args.cmdline,
                            kmsg=args.kmsg)
    if args.action == "rescue":
        return rescue(options, args.reason, args.rootmnt, Path(args.param_conf),
                      root=os.environ.get("ROOT"))
    try:
        session = start(options)
    except Exception as exc:
        console(f"bootseed-sshd: cannot start: {type(exc).__name__}: {exc}", args.kmsg)
        return 0
    for line in banner(session, None) if session is not None else []:
        console(line, args.kmsg)
    return 0


VERB = Verb(name="sshd", help=HELP, description=DESCRIPTION, add_arguments=add_arguments,
            run=run_command)

