"""A small QMP client: the lab talks to a running QEMU through its monitor socket.

QMP is line-delimited JSON over a stream socket (``-qmp unix:PATH,server=on,wait=off``):
QEMU greets with ``{"QMP": ...}``, the client must send ``qmp_capabilities`` before any
other command, and every command is answered by one ``{"return": ...}`` or
``{"error": {"class": ..., "desc": ...}}`` line; asynchronous ``{"event": ...}`` lines may
come in between and are kept in :attr:`QmpClient.events`.

What the lab uses it for: hot-plugging a disk into a running guest
(:func:`hot_add_disk`: ``blockdev-add`` of a host image file, then ``device_add`` of a
``virtio-blk-pci`` device on it), as a cloud attaches a volume to a running instance.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 30.0


class QmpError(Exception):
    """QEMU refused a command, or the monitor could not be reached or understood."""


class QmpClient:
    def __init__(self, path: Path, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._sock: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> QmpClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect (waiting up to the timeout for QEMU to create the socket), read the
        greeting and negotiate capabilities."""
        deadline = time.monotonic() + self.timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.path))
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"{self.path}: no QMP monitor ({exc})") from None
                time.sleep(0.2)
        self._sock = sock
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise QmpError(f"{self.path}: expected the QMP greeting, got {greeting!r}")
        self.execute("qmp_capabilities")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run one command; its ``return`` value, or ``QmpError`` with QEMU's reason."""
        if self._sock is None:
            raise QmpError("not connected")
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self._sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = self._read_message()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                error = reply["error"]
                raise QmpError(f"{command}: {error.get('class')}: {error.get('desc')}")
            if "return" in reply:
                return reply["return"]
            raise QmpError(f"{command}: unexpected reply {reply!r}")

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise QmpError(f"{self.path}: no answer within {self.timeout:g}s") from None
            if not chunk:
                raise QmpError(f"{self.path}: QEMU closed the monitor")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise QmpError(f"{self.path}: not JSON: {line[:200]!r} ({exc})") from None
        if not isinstance(message, dict):
            raise QmpError(f"{self.path}: not a JSON object: {line[:200]!r}")
        return message


def hot_add_disk(client: QmpClient, image: Path, node_name: str, fmt: str = "raw",
                 read_only: bool = False) -> None:
    """Attach the host file ``image`` to the running guest as a new virtio disk."""
    if "," in str(image):
        raise QmpError(f"{image}: a comma in the path is not supported")
    client.execute("blockdev-add", **{
        "driver": fmt, "node-name": node_name, "read-only": read_only,
        "file": {"driver": "file", "filename": str(image), "read-only": read_only}})
    client.execute("device_add", driver="virtio-blk-pci", id=f"dev-{node_name}",
                   drive=node_name)
