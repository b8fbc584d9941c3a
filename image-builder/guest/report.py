"""Guest side of the boot lab: print bootseed's outcome on the serial console.

Installed in lab images as ``/usr/lib/bootseed-lab/report.py`` and run by
``bootseed-lab-report.service`` (only when the kernel command line has
``bootseed.lab=1``). It waits for ``bootseed status --wait --json``, gathers a
few probes of the guest, and writes one JSON document between
:data:`BEGIN_MARKER` and :data:`END_MARKER` to ``/dev/ttyS0`` in a single
write (the tty layer does not interleave other writers' output into one
write), then powers the guest off so QEMU exits by itself.

Kernel command line knobs (all set by the lab):

* ``bootseed.lab.files=/a,/b`` - files whose content (base64) goes in the report
* ``bootseed.lab.status_timeout=S`` - how long to wait for bootseed (default 600)
* ``bootseed.lab.reboots=N`` - reboot after each of the first N reports, power
  off after the next one (boot number kept in :data:`BOOT_COUNTER`)
* ``bootseed.lab.poweroff=0`` - stay up after reporting
* ``bootseed.lab.wait=/a,/b`` - once bootseed's status is final, print
  :data:`WAIT_MARKER` on the console (the lab's cue for hot-plugging through QMP) and
  wait until these paths exist, at most ``bootseed.lab.wait_timeout=S`` seconds
  (default 120); the report's ``waited`` says what appeared and when
* ``bootseed.lab.agent=cloud-init`` - the image runs Debian's cloud-init
  instead of bootseed (also assumed when there is no ``bootseed`` command but
  a ``cloud-init`` one): wait for ``/var/lib/cloud/instance/boot-finished``
  and ``/run/cloud-init/result.json`` instead of bootseed's status, and report
  cloud-init's own records (see :func:`cloud_init_status`)

Probes: once the agent is done, every executable in :data:`PROBE_DIR` (a seed
puts them there with ``write_files``, which both agents have) runs in name
order; each one's exit status, standard output and error go in the report
under ``probes`` by file name. So a boot test can look at what a command says
after the run (``cloud-init status --wait``) on either agent's image.

Either way the report has ``agent`` and ``agent_units``: each agent unit's
CPU time and start/finish times from systemd (``CPUUsageNSec``,
``ExecMain*TimestampMonotonic``), for benchmarks.

When bootseed-generator left bootseed out of the boot (its verdict in
``/run/bootseed-generator`` starts with ``disabled``: no seed, or switched
off), there is nothing to wait for: the report says so at once.

Standard library plus ``bootseed.contract`` (itself standard library only),
whose copy the image builder puts beside this script (``rootfs.install_lab_files``):
it runs with the guest's /usr/bin/python3 whatever state bootseed's own install is
in, and in the cloud-init image, which has no bootseed at all.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import termios
import time
from typing import Any

from bootseed.contract import cmdline as kernel_cmdline

BEGIN_MARKER = "==== BOOTSEED-REPORT BEGIN ===="
END_MARKER = "==== BOOTSEED-REPORT END ===="
WAIT_MARKER = "==== BOOTSEED-LAB WAITING ===="
REPORT_UNIT = "bootseed-lab-report.service"
JOB_SETTLE_S = 30.0
REPORT_FORMAT = 1
FILE_LIMIT = 64 * 1024
GENERATOR_VERDICT = "/run/bootseed-generator"
BOOT_COUNTER = "/var/lib/bootseed-lab/boot-count"
TEXT_LIMIT = 16 * 1024
CLOUD_INIT_FINISHED = "/var/lib/cloud/instance/boot-finished"
CLOUD_INIT_RESULT = "/run/cloud-init/result.json"
CLOUD_INIT_STATUS = "/run/cloud-init/status.json"
AGENT_UNITS = {
    "bootseed": ("bootseed.service", "bootseed-final.service"),
    "cloud-init": ("cloud-init-local.service", "cloud-init.service", "cloud-config.service",
                   "cloud-final.service"),
}
PROBE_DIR = "/var/lib/bootseed-lab/probes"
PROBE_TIMEOUT = 300
UNIT_PROPERTIES = ("CPUUsageNSec", "ExecMainStartTimestampMonotonic",
                   "ExecMainExitTimestampMonotonic", "ActiveEnterTimestampMonotonic",
                   "InactiveExitTimestampMonotonic", "Result")


def parse_cmdline(cmdline: str) -> dict[str, str]:
    """``bootseed.lab.*`` options from a kernel command line (prefix stripped)."""
    return dict(kernel_cmdline.parse(cmdline).lab)


def _run(argv: list[str], timeout: float = 30) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", f"{argv[0]}: {exc}"
    return proc.returncode, proc.stdout[-TEXT_LIMIT:], proc.stderr[-TEXT_LIMIT:]


def bootseed_status(timeout: float) -> dict[str, Any]:
    rc, out, err = _run(
        ["bootseed", "status", "--wait", "--json", "--timeout", str(int(timeout))],
        timeout=timeout + 30,
    )
    parsed: Any = None
    error = ""
    try:
        parsed = json.loads(out) if out.strip() else None
    except ValueError as exc:
        error = f"status output is not JSON: {exc}"
    return {"rc": rc, "json": parsed, "stderr": err, "error": error}


def users(min_uid: int = 1000) -> list[dict[str, Any]]:
    found = []
    for entry in pwd.getpwall():
        if entry.pw_uid < min_uid or entry.pw_name == "nobody":
            continue
        keys_path = os.path.join(entry.pw_dir, ".ssh", "authorized_keys")
        try:
            with open(keys_path, encoding="utf-8", errors="replace") as handle:
                keys: list[str] | None = [ln.strip() for ln in handle if ln.strip()]
        except OSError:
            keys = None
        groups_rc, groups_out, _ = _run(["id", "-nG", entry.pw_name])
        found.append(
            {
                "name": entry.pw_name,
                "uid": entry.pw_uid,
                "home": entry.pw_dir,
                "shell": entry.pw_shell,
                "groups": groups_out.split() if groups_rc == 0 else [],
                "authorized_keys": keys,
            }
        )
    return found


def file_contents(paths: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for path in paths:
        try:
            st = os.stat(path)
            with open(path, "rb") as handle:
                data = handle.read(FILE_LIMIT)
        except OSError as exc:
            result[path] = {"error": exc.strerror or str(exc)}
            continue
        result[path] = {
            "size": st.st_size,
            "mode": f"{st.st_mode & 0o7777:04o}",
            "uid": st.st_uid,
            "b64": base64.b64encode(data).decode(),
        }
    return result


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _monotonic_since(unit: str) -> float | None:
    rc, out, _ = _run(["systemctl", "show", "-P", "ActiveEnterTimestampMonotonic", unit])
    value = out.strip()
    return int(value) / 1e6 if rc == 0 and value.isdigit() and int(value) else None


def agent_kind(options: dict[str, str]) -> str:
    """Which first-boot agent this image runs: "bootseed" or "cloud-init"."""
    if options.get("agent"):
        return options["agent"]
    if shutil.which("bootseed") is None and shutil.which("cloud-init") is not None:
        return "cloud-init"
    return "bootseed"


def parse_unit_show(text: str) -> dict[str, Any]:
    """``systemctl show -p A -p B UNIT`` output: numbers as int, ``[not set]`` as None."""
    values: dict[str, Any] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        if value.isdigit():
            values[name] = int(value)
        elif value in ("", "[not set]"):
            values[name] = None
        else:
            values[name] = value
    return values


def unit_times(units: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for unit in units:
        argv = ["systemctl", "show"]
        for prop in UNIT_PROPERTIES:
            argv += ["-p", prop]
        rc, out, _ = _run([*argv, unit])
        if rc == 0:
            found[unit] = parse_unit_show(out)
    return found


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return json.loads(handle.read())
    except (OSError, ValueError):
        return None


def cloud_init_status(timeout: float) -> dict[str, Any]:
    """Wait for cloud-init's final stage, then its own records.

    ``boot-finished`` (written by its final_message module) starts with the
    uptime at which it was written; ``result.json`` (written when the final
    stage ends) lists errors; ``status.json`` has each stage's start and
    finish (epoch seconds), converted here to uptime with ``boot_epoch``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(CLOUD_INIT_FINISHED) and os.path.exists(CLOUD_INIT_RESULT):
            break
        time.sleep(0.5)
    waited_out = not os.path.exists(CLOUD_INIT_RESULT)
    try:
        with open(CLOUD_INIT_FINISHED, encoding="utf-8", errors="replace") as handle:
            finished_text: str | None = handle.read().strip()
    except OSError:
        finished_text = None
    finished_uptime: float | None = None
    if finished_text:
        try:
            finished_uptime = float(finished_text.split()[0])
        except ValueError:
            finished_uptime = None
    _, version, _ = _run(["cloud-init", "--version"])
    return {
        "timed_out": waited_out,
        "boot_finished": finished_text,
        "boot_finished_uptime": finished_uptime,
        "boot_epoch": time.time() - time.clock_gettime(time.CLOCK_BOOTTIME),
        "result": _read_json(CLOUD_INIT_RESULT),
        "status": _read_json(CLOUD_INIT_STATUS),
        "version": version.strip(),
    }


def wait_for_paths(paths: list[str], timeout: float,
                   console: str = "/dev/ttyS0") -> dict[str, Any]:
    """Say :data:`WAIT_MARKER` on the console, then wait for ``paths`` to exist; which
    did, and the uptime each was first seen at."""
    with contextlib.suppress(OSError):
        _write_console(f"\n{WAIT_MARKER} {','.join(paths)}\n", console)
    started = time.monotonic()
    seen: dict[str, float] = {}
    while True:
        for path in paths:
            if path not in seen and os.path.exists(path):
                seen[path] = round(time.clock_gettime(time.CLOCK_BOOTTIME), 1)
        if len(seen) == len(paths) or time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    # What made the paths appear may still be finishing (a unit started by udev): let
    # systemd's job queue drain, this report's own job aside.
    pending = settle_jobs(min(JOB_SETTLE_S, max(1.0, timeout - (time.monotonic() - started))))
    return {"paths": paths, "seen": seen, "missing": [p for p in paths if p not in seen],
            "seconds": round(time.monotonic() - started, 1), "jobs_pending": pending}


def settle_jobs(timeout: float) -> list[str]:
    """Wait until systemd has no queued job but this unit's; the ones left after that."""
    deadline = time.monotonic() + timeout
    while True:
        _, out, _ = _run(["systemctl", "list-jobs", "--no-legend"])
        pending = [line.split()[1] for line in out.splitlines()
                   if len(line.split()) > 1 and REPORT_UNIT not in line]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def disk_probes() -> dict[str, Any]:
    """The root filesystem's size (``df -B1 /``) and the block devices (``lsblk -b -J``)."""
    _, df_out, df_err = _run(["df", "-B1", "--output=source,fstype,size,used,avail,target",
                              "/"])
    _, lsblk_out, _ = _run(["lsblk", "-b", "-J", "-o",
                            "NAME,KNAME,SIZE,TYPE,FSTYPE,LABEL,UUID,MOUNTPOINT,PKNAME"])
    root: dict[str, Any] = {"error": df_err.strip()}
    lines = df_out.splitlines()
    if len(lines) >= 2:
        fields = lines[1].split()
        if len(fields) == 6:
            root = dict(zip(("source", "fstype", "size", "used", "avail", "target"), fields,
                            strict=True))
            for key in ("size", "used", "avail"):
                root[key] = int(root[key]) if root[key].isdigit() else None
    return {"df_root": root, "lsblk": _json_or_none(lsblk_out)}
def run_probes(directory: str = PROBE_DIR) -> dict[str, Any]:
    """Each executable in ``directory``: ``{"rc", "stdout", "stderr"}`` by its name."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    found: dict[str, Any] = {}
    for name in names:
        path = os.path.join(directory, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        rc, out, err = _run([path], timeout=PROBE_TIMEOUT)
        found[name] = {"rc": rc, "stdout": out, "stderr": err}
    return found


def generator_verdict(path: str = GENERATOR_VERDICT) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def collect(options: dict[str, str]) -> dict[str, Any]:
    timeout = float(options.get("status_timeout") or 600)
    agent = agent_kind(options)
    generator = generator_verdict()
    cloud_init: dict[str, Any] | None = None
    if agent == "cloud-init":
        cloud_init = cloud_init_status(timeout)
        status: dict[str, Any] = {"rc": None, "json": None, "stderr": "", "error": "",
                                  "skipped": True}
    elif generator is not None and generator.startswith("disabled"):
        # bootseed-generator left bootseed out of this boot: there is no run
        # to wait for.
        status = {"rc": None, "json": None, "stderr": "", "error": "", "skipped": True}
    else:
        status = bootseed_status(timeout)
    waits = [p for p in (options.get("wait") or "").split(",") if p]
    waited = wait_for_paths(waits, float(options.get("wait_timeout") or 120)) if waits \
        else None
    probes = run_probes()
    files = [p for p in (options.get("files") or "").split(",") if p]
    _, state, _ = _run(["systemctl", "is-system-running"])
    _, failed, _ = _run(["systemctl", "list-units", "--failed", "--plain", "--no-legend"])
    _, ip_json, _ = _run(["ip", "-j", "addr"])
    _, routes_json, _ = _run(["ip", "-j", "route"])
    _, networkd, _ = _run(["journalctl", "-b", "-u", "systemd-networkd.service", "--no-pager",
                           "-o", "short-monotonic", "-n", "40"])
    _, journal, _ = _run(["journalctl", "-b", "-u", "bootseed.service", "--no-pager",
                          "-o", "short-monotonic", "-n", "80"])
    addresses: Any = _json_or_none(ip_json)
    routes: Any = _json_or_none(routes_json)
    return {
        "format": REPORT_FORMAT,
        "uptime": time.clock_gettime(time.CLOCK_BOOTTIME),
        "hostname": socket.gethostname(),
        "fqdn": socket.getfqdn(),
        "agent": agent,
        "status": status,
        "cloud_init": cloud_init,
        "agent_units": unit_times(AGENT_UNITS.get(agent, ())),
        "generator": generator,
        "system_state": state.strip(),
        "failed_units": [line.split()[0] for line in failed.splitlines() if line.strip()],
        "multi_user_reached": _monotonic_since("multi-user.target"),
        "bootseed_service_active": _monotonic_since("bootseed.service"),
        "users": users(),
        "files": file_contents(files),
        "probes": probes,
        "addresses": addresses,
        "routes": routes,
        "networkd_journal": networkd,
        "bootseed_journal": journal,
        "waited": waited,
        "disks": disk_probes(),
    }


def emit(report: dict[str, Any], device: str = "/dev/ttyS0") -> None:
    text = f"\n{BEGIN_MARKER}\n{json.dumps(report, sort_keys=True)}\n{END_MARKER}\n"
    print(text, flush=True)
    _write_console(text, device)


def _write_console(text: str, device: str) -> None:
    data = text.encode()
    fd = os.open(device, os.O_WRONLY | os.O_NOCTTY)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        # write() returns once the bytes are in the tty buffer; the poweroff
        # that follows would drop whatever the UART had not sent yet.
        with contextlib.suppress(termios.error):
            termios.tcdrain(fd)
    finally:
        os.close(fd)


def count_boot(path: str = BOOT_COUNTER) -> int:
    """This boot's number (1 on the first boot the lab reports on)."""
    try:
        with open(path, encoding="ascii") as handle:
            previous = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="ascii") as handle:
        handle.write(f"{previous + 1}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(path + ".tmp", path)
    return previous + 1


def next_action(options: dict[str, str], boot_number: int) -> str:
    """"reboot", "poweroff" or "stay" after reporting on boot ``boot_number``."""
    if options.get("poweroff", "1") == "0":
        return "stay"
    try:
        reboots = int(options.get("reboots") or 0)
    except ValueError:
        reboots = 0
    return "reboot" if boot_number <= reboots else "poweroff"


def main() -> int:
    with open("/proc/cmdline", encoding="utf-8") as handle:
        options = parse_cmdline(handle.read())
    boot_number = count_boot()
    try:
        report = collect(options)
    except Exception as exc:  # the lab must hear about any failure here
        report = {"format": REPORT_FORMAT, "report_error": f"{type(exc).__name__}: {exc}"}
    report["boot_number"] = boot_number
    action = next_action(options, boot_number)
    report["next"] = action
    emit(report)
    if action != "stay":
        subprocess.run(["systemctl", action, "--no-block"], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
