"""Limits on file effects: one byte budget for everything write_files writes in a run,
setuid/setgid/sticky bits kept as given, and no start timeout that kills a slow
machine's agent in the middle of a module."""

from __future__ import annotations

import base64
import gzip
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from bootseed.late import runner
from bootseed.late.modules import write_files
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.stages import RunStage

from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import make_ctx, make_target

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def _zeros(size: int) -> dict[str, str]:
    return {"encoding": "gz+b64", "content": base64.b64encode(gzip.compress(b"\0" * size)).decode()}


def test_the_budget_is_shared_by_all_entries_and_both_passes(tmp_path: Path) -> None:
    assert write_files.TOTAL_BUDGET == 64 * MIB  # the documented figure (docs/security.md)
    target = make_target(tmp_path / "root")
    items = [{"path": f"/data/f{i}", **_zeros(20 * MIB), "defer": i % 2 == 1} for i in range(5)]
    items.append({"path": "/data/small", "content": "fits\n"})
    cfg = {"write_files": items}
    with pytest.raises(write_files.WriteFilesError) as first:
        write_files.write_entries(make_ctx(target, cfg), deferred=False)
    with pytest.raises(write_files.WriteFilesError) as second:
        write_files.write_entries(make_ctx(target, cfg), deferred=True)
    written = sorted(p.name for p in (target.root / "data").iterdir())
    # f0 + f1 + f2 = 60 MiB fit; f3 (deferred) and f4 would pass 64 MiB; 5 bytes still fit.
    assert written == ["f0", "f1", "f2", "small"]
    assert "write_files[4]" in str(first.value) and "budget" in str(first.value)
    assert "write_files[3]" in str(second.value)


def test_special_mode_bits_are_kept(tmp_path: Path) -> None:
    target = make_target(tmp_path / "root")
    with open(target.root / "etc/passwd", "a") as passwd:
        passwd.write("bob:x:1000:100::/home/bob:/bin/sh\n")
    cfg = {"write_files": [
        {"path": "/usr/local/bin/tool", "content": "#!/bin/sh\n", "permissions": "04777"},
        {"path": "/usr/local/bin/grp", "content": "#!/bin/sh\n", "permissions": "02755",
         "owner": "bob:users"},
        {"path": "/srv/drop", "content": "", "permissions": 0o1777},
    ]}
    write_files.write_entries(make_ctx(target, cfg), deferred=False)
    modes = {p: stat.S_IMODE((target.root / p).stat().st_mode)
             for p in ("usr/local/bin/tool", "usr/local/bin/grp", "srv/drop")}
    assert modes == {"usr/local/bin/tool": 0o4777, "usr/local/bin/grp": 0o2755,
                     "srv/drop": 0o1777}
    assert (target.root / "usr/local/bin/grp").stat().st_uid == 1000


def test_the_unit_has_no_start_timeout() -> None:
    unit = (REPO / "systemd/bootseed.service").read_text()
    assert "TimeoutStartSec=infinity" in unit.splitlines()
    assert "Type=notify" in unit.splitlines()


def test_the_agent_sends_ready_itself_when_the_local_stage_is_slow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setattr(runner, "READY_DEADLINE", 0.3)
    release = threading.Event()

    def slow(ctx: ModuleContext) -> None:
        release.wait(10)

    spec = ModuleSpec(name="slow_keys", stage=Stage.INIT, frequency=Frequency.PER_BOOT,
                      schema={}, handle=slow, order=500)
    root = make_target(tmp_path / "root").root
    plant_seed(root, "#cloud-config\ncloud_init_modules: [slow_keys]\n")
    agent = Agent(root, extra=(spec,))
    results: list[runner.RunStatus] = []
    worker = threading.Thread(target=lambda: results.append(
        agent.run(stages=(RunStage.LOCAL,), notify=True).status))
    started = time.monotonic()
    worker.start()
    try:
        message = listener.recv(4096).decode()
        waited = time.monotonic() - started
        assert message.startswith("READY=1") and "still running" in message
        assert worker.is_alive() and waited < 5  # sent while the module still runs
    finally:
        release.set()
        worker.join(20)
        listener.close()
    [status] = results
    assert any("still running" in p.message for p in status.problems)
    assert [m.status for m in status.modules if m.name == "slow_keys"] == ["ok"]
