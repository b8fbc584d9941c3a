from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from bootseed.late import filelock

HOLDER = """
import sys, time
from bootseed.late import filelock
with filelock.held(sys.argv[1], 5):
    print("held", flush=True)
    time.sleep(30)
"""


def test_a_second_holder_waits_then_times_out_and_gets_it_once_free(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        with (pytest.raises(filelock.LockTimeout, match=r"x\.lock held for more than 0\.5s"),
              filelock.held(lock, 0.5)):
            pass
        assert time.monotonic() - started >= 0.5
    finally:
        holder.kill()
        holder.wait()
    with filelock.held(lock, 5):
        assert oct(lock.stat().st_mode & 0o777) == "0o600"
