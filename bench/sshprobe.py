"""Time to SSH: when the guest's sshd first accepts a login with the seed's user key.

The bench seed's users carry public keys whose private halves are nowhere;
:func:`seed_variant` writes a copy of the seed with alice's key replaced by a
key pair made for this run (same type, same place: the config the agents apply
is the same), and optionally with SSH host keys provided (``ssh_keys``) so
neither agent generates any. :class:`SshProbe` then tries ``ssh`` from the host
through the lab's forwarded port (``BootOptions.ssh_forward_port``) in a
bounded loop while the guest boots. A login that works runs ``cat
/proc/uptime`` in the guest, so the figure is the guest's uptime at the first
accepted login (the same clock as "configured"); the host wall time since QEMU
started is kept beside it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROBE_USER = "alice"
_REPLACED_COMMENT = "alice@bench"
HOST_KEY_TYPES = (("ed25519", []), ("ecdsa", ["-b", "256"]), ("rsa", ["-b", "3072"]))


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public_line: str


def make_key(path: Path, keytype: str = "ed25519", extra: list[str] | None = None,
             comment: str = "bench-probe") -> KeyPair:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", keytype, *(extra or []), "-N", "", "-C", comment,
                    "-f", str(path)], check=True, capture_output=True, timeout=120)
    public = path.with_name(path.name + ".pub").read_text(encoding="ascii").strip()
    return KeyPair(path, public)


def with_probe_key(user_data: str, public_line: str) -> str:
    """``user_data`` with alice's authorized key replaced by ``public_line``."""
    lines = user_data.splitlines(keepends=True)
    hits = [n for n, line in enumerate(lines) if line.rstrip().endswith(_REPLACED_COMMENT)
            and line.lstrip().startswith("- ")]
    if len(hits) != 1:
        raise ValueError(f"expected one key line ending in {_REPLACED_COMMENT!r}, "
                         f"found {len(hits)}")
    line = lines[hits[0]]
    indent = line[:len(line) - len(line.lstrip())]
    lines[hits[0]] = f"{indent}- {public_line}\n"
    return "".join(lines)


def with_host_keys(user_data: str, keys: dict[str, KeyPair]) -> str:
    """``user_data`` plus an ``ssh_keys`` block giving each host key pair."""
    block = ["", "ssh_keys:"]
    for keytype, pair in keys.items():
        block.append(f"  {keytype}_private: |")
        block += [f"    {line}" for line in pair.private.read_text(encoding="ascii").splitlines()]
        block.append(f"  {keytype}_public: {pair.public_line}")
    return user_data.rstrip("\n") + "\n" + "\n".join(block) + "\n"


def seed_variant(seed: Path, out: Path, probe: KeyPair,
                 host_keys: dict[str, KeyPair] | None = None) -> Path:
    """A copy of the NoCloud seed dir ``seed`` in ``out`` with the probe's key (and
    the host keys, if given)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(seed / "meta-data", out / "meta-data")
    text = with_probe_key((seed / "user-data").read_text(encoding="utf-8"), probe.public_line)
    if host_keys:
        text = with_host_keys(text, host_keys)
    (out / "user-data").write_text(text, encoding="utf-8")
    return out


def make_host_keys(directory: Path) -> dict[str, KeyPair]:
    return {keytype: make_key(directory / f"ssh_host_{keytype}_key", keytype, extra,
                              comment="root@bench-typical")
            for keytype, extra in HOST_KEY_TYPES}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_uptime(text: str) -> float | None:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


@dataclass
class ProbeResult:
    guest_uptime: float | None = None  # the guest's /proc/uptime at the first login
    host_seconds: float | None = None  # host wall clock at that login (time.time())
    attempts: int = 0
    last_error: str = ""


class SshProbe:
    """Try ``ssh user@127.0.0.1 -p port cat /proc/uptime`` until it works or ``stop``."""

    def __init__(self, port: int, key: Path, user: str = PROBE_USER, interval: float = 0.5,
                 connect_timeout: int = 5, attempt_timeout: float = 60.0,
                 deadline: float = 1800.0) -> None:
        self.port, self.key, self.user = port, key, user
        self.interval, self.connect_timeout = interval, connect_timeout
        self.attempt_timeout, self.deadline = attempt_timeout, deadline
        self.result = ProbeResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ssh-probe", daemon=True)

    def argv(self) -> list[str]:
        return ["ssh", "-p", str(self.port), "-i", str(self.key),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", f"{self.user}@127.0.0.1", "cat /proc/uptime"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> ProbeResult:
        self._stop.set()
        self._thread.join()
        return self.result

    def _loop(self) -> None:
        ends = time.monotonic() + self.deadline
        while not self._stop.is_set() and time.monotonic() < ends:
            self.result.attempts += 1
            try:
                done = subprocess.run(self.argv(), capture_output=True, text=True,
                                      timeout=self.attempt_timeout, check=False)
            except subprocess.TimeoutExpired:
                self.result.last_error = "attempt timed out"
                continue
            if done.returncode == 0:
                self.result.host_seconds = time.time()
                self.result.guest_uptime = parse_uptime(done.stdout)
                return
            self.result.last_error = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
            self._stop.wait(self.interval)
