"""The lab's QMP client and console hooks, against a QMP peer on a real unix socket.

The peer speaks QMP's wire protocol as QEMU does (greeting, capabilities negotiation,
events between replies, error replies); it records what the client sent, so the tests
check the exact commands a hot-plug sends. Booting QEMU is the boot suite's job
(tests/boot/test_hotattach.py).
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bootseed.image_builder import lab as lab_module
from bootseed.image_builder.guest import report
from bootseed.image_builder.lab import BootLab, BootOptions, ConsoleHook, HookOutcome, LabError
from bootseed.image_builder.qmp import QmpClient, QmpError, hot_add_disk

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}},
                    "capabilities": ["oob"]}}


class QmpPeer:
    """Answers each command with ``{"return": {}}`` (an event first), or the error set
    for that command name."""

    def __init__(self, path: Path, errors: dict[str, str] | None = None) -> None:
        self.path = path
        self.errors = errors or {}
        self.received: list[dict[str, Any]] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(json.dumps(GREETING).encode() + b"\r\n")
                buffer = b""
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\n" in buffer:
                        line, _, buffer = buffer.partition(b"\n")
                        message = json.loads(line)
                        self.received.append(message)
                        name = message["execute"]
                        conn.sendall(b'{"event": "DEVICE_TRAY_MOVED", "data": {}}\n')
                        if name in self.errors:
                            reply: dict[str, Any] = {"error": {"class": "GenericError",
                                                               "desc": self.errors[name]}}
                        else:
                            reply = {"return": {}}
                        conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="qmp-test-") as tmp:
        yield Path(tmp)


def test_hot_add_disk_negotiates_then_adds_node_and_device(sock_dir: Path) -> None:
    peer = QmpPeer(sock_dir / "qmp.sock")
    try:
        with QmpClient(sock_dir / "qmp.sock", timeout=5) as client:
            hot_add_disk(client, Path("/images/vol.raw"), "hot1")
            assert [e["event"] for e in client.events] == ["DEVICE_TRAY_MOVED"] * 3
    finally:
        peer.close()
    assert peer.received == [
        {"execute": "qmp_capabilities"},
        {"execute": "blockdev-add", "arguments": {
            "driver": "raw", "node-name": "hot1", "read-only": False,
            "file": {"driver": "file", "filename": "/images/vol.raw", "read-only": False}}},
        {"execute": "device_add", "arguments": {
            "driver": "virtio-blk-pci", "id": "dev-hot1", "drive": "hot1"}}]


def test_a_refused_command_raises_with_qemus_reason(sock_dir: Path) -> None:
    peer = QmpPeer(sock_dir / "qmp.sock", {"device_add": "Bus 'pci.0' does not support "
                                                          "hotplugging"})
    try:
        with QmpClient(sock_dir / "qmp.sock", timeout=5) as client, \
                pytest.raises(QmpError, match=r"device_add: GenericError: Bus 'pci\.0'"):
            hot_add_disk(client, Path("/images/vol.raw"), "hot1")
    finally:
        peer.close()
    with pytest.raises(QmpError, match="no QMP monitor"):
        QmpClient(sock_dir / "absent.sock", timeout=0.3).connect()


def test_hooks_fire_in_order_when_their_markers_show(sock_dir: Path, tmp_path: Path) -> None:
    peer = QmpPeer(sock_dir / "qmp.sock")
    console = tmp_path / "console.log"
    console.write_text("booting\n")
    seen: list[str] = []

    def first(client: QmpClient) -> None:
        seen.append("first")
        client.execute("query-status")

    def second(client: QmpClient) -> None:
        raise RuntimeError("the test's hook broke")

    hooks = [ConsoleHook("READY-1", first), ConsoleHook("READY-2", second),
             ConsoleHook("NEVER", first)]
    outcomes = [HookOutcome(h.marker) for h in hooks]
    try:
        with lab_module._hook_runner(hooks, outcomes, console, sock_dir / "qmp.sock"):
            # The second marker before the first: hooks go in order, each after the last.
            with console.open("a") as handle:
                handle.write("READY-2 too early\nREADY-1\n")
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                time.sleep(0.1)
            with console.open("a") as handle:
                handle.write("READY-2\n")
            while not outcomes[1].error and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        peer.close()
    assert seen == ["first"]
    assert outcomes[0].fired_at is not None and outcomes[0].error == ""
    assert outcomes[1].error == "RuntimeError: the test's hook broke"
    assert outcomes[2].fired_at is None
    assert {"execute": "query-status"} in peer.received


def test_kernel_arguments_for_waiting_and_a_bad_grow_size(tmp_path: Path) -> None:
    lab = BootLab.__new__(BootLab)
    args = lab.kernel_args(BootOptions(wait_files=["/mnt/hot/a", "/var/m"], wait_timeout=90))
    assert "bootseed.lab.wait=/mnt/hot/a,/var/m bootseed.lab.wait_timeout=90" in args
    with pytest.raises(LabError, match="wait files paths must be absolute"):
        lab.kernel_args(BootOptions(wait_files=["relative"]))
    parsed = report.parse_cmdline(args)
    assert parsed["wait"] == "/mnt/hot/a,/var/m" and parsed["wait_timeout"] == "90"


def test_guest_waits_for_paths_and_says_so_on_the_console(tmp_path: Path) -> None:
    console = tmp_path / "ttyS0"
    console.write_text("")
    present = tmp_path / "present"
    present.write_text("x")
    late = tmp_path / "late"
    threading.Timer(0.7, late.write_text, ("y",)).start()
    waited = report.wait_for_paths([str(present), str(late)], 10, str(console))
    assert waited["missing"] == [] and set(waited["seen"]) == {str(present), str(late)}
    assert console.read_text() == f"\n{report.WAIT_MARKER} {present},{late}\n"
    gone = report.wait_for_paths([str(tmp_path / "never")], 0.6, str(console))
    assert gone["missing"] == [str(tmp_path / "never")] and gone["seconds"] >= 0.5


def test_disk_probes_read_df_and_lsblk_of_this_machine() -> None:
    probes = report.disk_probes()
    root = probes["df_root"]
    assert root["target"] == "/" and isinstance(root["size"], int) and root["size"] > 0
    assert probes["lsblk"] is None or "blockdevices" in probes["lsblk"]
