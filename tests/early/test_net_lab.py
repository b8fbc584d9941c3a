"""A two-namespace network for early-stage tests, and checks that it is sealed.

``NetnsPair`` makes a server and a client network namespace joined by a veth pair
(the kernel here has no dummy links). dnsmasq serves DHCP in the server namespace;
mock HTTP servers run there as subprocesses; the code under test runs in the client
namespace with ``ip netns exec``. Nothing is routed anywhere else: the namespaces have
no other links. Everything is deleted on close.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SUBNET = "10.231.7"
SERVER_IP = f"{SUBNET}.1"
_counter = itertools.count()

SERVER_PROGRAM = r"""
import json, sys
kind, host, port, arg = sys.argv[1:5]
if kind == "static":
    from bootseed.image_builder.mocks.static import StaticServer
    srv = StaticServer(arg, host=host, port=int(port))
else:
    from bootseed.image_builder.mocks.imds import MockImds
    srv = MockImds.from_seed_dir(arg, host=host, port=int(port), mode=kind.split(":")[1])
with srv:
    print(json.dumps({"url": srv.url}), flush=True)
    sys.stdin.read()
    log = [{"method": r.method, "path": r.path, "client": r.client} for r in srv.requests]
print(json.dumps(log), flush=True)
"""


def have_tools() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "dnsmasq"))


needs_netns = pytest.mark.skipif(not have_tools(), reason="needs root, ip and dnsmasq")


class MockProcess:
    """A mock server running in the server namespace; ``stop()`` returns its request log."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def stop(self) -> list[dict[str, str]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        out = self.proc.stdout.readline()
        self.proc.wait(timeout=10)
        return list(json.loads(out)) if out.strip() else []


class NetnsPair:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{next(_counter)}"
        self.server = f"bsS{tag}"
        self.client = f"bsC{tag}"
        self.client_link = "eth0"
        self._procs: list[subprocess.Popen[str]] = []
        self._dnsmasq: subprocess.Popen[str] | None = None
        _ip("netns", "add", self.server)
        _ip("netns", "add", self.client)
        try:
            _ip("link", "add", "srv0", "netns", self.server, "type", "veth", "peer", "name",
                self.client_link, "netns", self.client)
            _ip("-n", self.server, "addr", "add", f"{SERVER_IP}/24", "dev", "srv0")
            _ip("-n", self.server, "link", "set", "srv0", "up")
            _ip("-n", self.server, "link", "set", "lo", "up")
            _ip("-n", self.client, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def start_dhcp(self) -> None:
        # --no-ping: dnsmasq otherwise waits ~3 s probing each address before offering it.
        self._dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.server, "dnsmasq", "--keep-in-foreground",
             "--conf-file=/dev/null", "--interface=srv0", "--bind-interfaces", "--port=0",
             f"--dhcp-range={SUBNET}.50,{SUBNET}.99,255.255.255.0,1h", "--no-ping",
             f"--dhcp-option=option:router,{SERVER_IP}",
             f"--dhcp-option=option:dns-server,{SERVER_IP}", "--leasefile-ro",
             "--log-dhcp", "--log-facility=-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._procs.append(self._dnsmasq)
        time.sleep(0.3)
        if self._dnsmasq.poll() is not None:
            raise RuntimeError(f"dnsmasq did not start: {self._dnsmasq.stderr.read()}")

    def dhcp_log(self) -> str:
        """dnsmasq's log so far (stops dnsmasq)."""
        if self._dnsmasq is None:
            return ""
        self._dnsmasq.terminate()
        _, err = self._dnsmasq.communicate(timeout=10)
        self._dnsmasq = None
        return err

    def serve(self, kind: str, directory: Path, port: int) -> MockProcess:
        """``kind``: ``static`` (a NoCloud seed URL) or ``imds:<mode>`` (the EC2 mock)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.server, sys.executable, "-c", SERVER_PROGRAM, kind,
             SERVER_IP, str(port), str(directory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"mock server {kind} did not start")
        return MockProcess(proc, json.loads(line)["url"])

    def run_client(self, argv: list[str], timeout: float = 120,
                   mount_run: bool = False) -> subprocess.CompletedProcess[str]:
        """Run in the client namespace. ``mount_run`` gives it a private tmpfs /run (its
        own mount namespace), for tools that write fixed paths there (klibc ipconfig)."""
        if mount_run:
            script = 'mount -t tmpfs tmpfs /run && exec "$@"'
            argv = ["sh", "-c", script, "sh", *argv]
        return subprocess.run(["ip", "netns", "exec", self.client, *argv], capture_output=True,
                              text=True, timeout=timeout, check=False)

    def client_addresses(self) -> list[str]:
        out = subprocess.run(["ip", "-n", self.client, "-j", "-4", "addr", "show", "dev",
                              self.client_link], capture_output=True, text=True, check=True)
        return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out.stdout)
                for a in link.get("addr_info", [])]

    def client_link_up(self) -> bool:
        out = subprocess.run(["ip", "-n", self.client, "-j", "link", "show", "dev",
                              self.client_link], capture_output=True, text=True, check=True)
        return "UP" in json.loads(out.stdout)[0]["flags"]

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for ns in (self.client, self.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def netns_lab() -> Iterator[NetnsPair]:
    pair = NetnsPair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def netns_pair() -> Iterator[NetnsPair]:
    with netns_lab() as pair:
        yield pair


@needs_netns
@pytest.mark.root
def test_pair_is_sealed(netns_pair: NetnsPair) -> None:
    # The client namespace has loopback and the veth end only: no way out of the lab.
    out = subprocess.run(["ip", "-n", netns_pair.client, "-o", "link"], capture_output=True,
                         text=True, check=True)
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines())
    assert names == ["eth0", "lo"]
    routes = subprocess.run(["ip", "-n", netns_pair.client, "route"], capture_output=True,
                            text=True, check=True)
    assert routes.stdout.strip() == ""
