"""Killed at any moment and run again, ``bootseed run`` ends where a clean run ends.

A seeded series of runs is SIGKILLed (the whole process group, so user scripts
die too) after a random delay within a clean run's duration, then run again to
completion. The end state must match a clean run's: appended content appended
once, no ``.tmp-<pid>`` file anywhere, the same set of files, and runcmd's side
effect at most once -- when a kill landed while user scripts ran, the re-run
reports scripts_user as not repeated instead of running it again. A kill that
lands in a script module before its first script starts (or in one with no
scripts) holds nothing back.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from testsupport.chroot import make_shell_root
from testsupport.runenv import plant_seed
from testsupport.targetfs import make_target

ITERATIONS = 20
SEED = 15
BIG = 8 * 1024 * 1024
# Paths whose content is expected to differ between runs (times, random keys, ids).
# cloud-init's view of the run (status times, boot-finished) is as volatile as bootseed's.
VOLATILE = ("run/bootseed", "var/lib/bootseed", "var/log", "etc/ssh", "etc/shadow",
            "etc/gshadow", "run/cloud-init", "var/lib/cloud/instances/")

CONFIG = {
    "ssh_genkeytypes": ["ed25519"],
    "users": [{"name": "bob", "groups": ["adm"]}],
    "write_files": [
        {"path": "/etc/app/big.bin", "encoding": "gz+b64",
         "content": base64.b64encode(gzip.compress(b"\0" * BIG)).decode()},
        {"path": "/etc/app/log.conf", "content": "one\n", "append": True},
        {"path": "/etc/app/log.conf", "content": "two\n", "append": True},
        {"path": "/home/bob/notes", "content": "deferred\n", "append": True, "defer": True,
         "owner": "bob:bob"},
    ],
    "runcmd": ["echo ran >> /runcmd-count"],
}

_RUN = "import sys; from bootseed.late.cli import main; sys.exit(main(sys.argv[1:]))"


def _command(root: Path) -> list[str]:
    return [sys.executable, "-c", _RUN, "run", "--root", str(root), "--network-timeout", "0",
            "--console", str(root.parent / "console.txt")]


def _run(root: Path) -> None:
    subprocess.run(_command(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=120, check=False)


def _run_and_kill(root: Path, delay: float) -> None:
    proc = subprocess.Popen(_command(root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _template(base: Path) -> Path:
    root = make_shell_root(make_target(base / "template").root).root
    (root / "etc/app").mkdir()
    (root / "etc/app/log.conf").write_text("base\n")
    plant_seed(root, "#cloud-config\n" + yaml.safe_dump(CONFIG))
    return root


def _fresh(template: Path, where: Path) -> Path:
    shutil.copytree(template, where / "root", symlinks=True)
    return where / "root"


def _state(root: Path) -> dict[str, str]:
    """Every path outside the volatile places with a digest of its content."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.startswith(VOLATILE) or rel == "runcmd-count":
            continue
        if path.is_file() and not path.is_symlink():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir" if path.is_dir() else "other"
    return out


def _temp_files(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if ".tmp-" in p.name]


def _runcmd_count(root: Path) -> int:
    path = root / "runcmd-count"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_run_killed_by_its_own_script_is_not_repeated_and_blocks_nothing_else(
        tmp_path: Path) -> None:
    root = make_shell_root(make_target(tmp_path / "target").root).root
    # The script kills the whole session (the runner included) after its first effect.
    plant_seed(root, "#cloud-config\n" + yaml.safe_dump(
        {"runcmd": ["echo ran >> /runcmd-count", "kill -KILL 0"]}))
    killed = subprocess.run(_command(root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, timeout=120, check=False,
                            start_new_session=True)
    assert killed.returncode == -signal.SIGKILL
    _run(root)
    status = json.loads((root / "run/bootseed/status.json").read_text())
    assert _runcmd_count(root) == 1
    failed = {m["name"]: m["exception"] for m in status["modules"] if m["status"] == "failed"}
    # Only the module whose script had started is held back; the script directories
    # that were empty (per-once, per-instance, vendor) ran normally in both runs.
    assert failed == {"scripts_user": "NotRepeated"}, status["modules"]
    assert status["errors"] == [] and status["state"] == "error"


def test_killed_runs_converge_to_a_clean_run(tmp_path: Path) -> None:
    template = _template(tmp_path)
    clean = _fresh(template, tmp_path / "clean")
    started = time.monotonic()
    _run(clean)
    duration = time.monotonic() - started
    status = json.loads((clean / "run/bootseed/status.json").read_text())
    assert status["state"] == "done", status
    assert (clean / "etc/app/log.conf").read_text() == "base\none\ntwo\n"
    assert _runcmd_count(clean) == 1
    expected = _state(clean)

    rng = random.Random(SEED)
    for index in range(ITERATIONS):
        root = _fresh(template, tmp_path / f"kill-{index}")
        # One or two kills at random points, then a run to completion.
        for _ in range(rng.choice((1, 2))):
            _run_and_kill(root, rng.uniform(0.0, duration))
        _run(root)
        where = f"iteration {index}"
        assert _temp_files(root) == [], where
        assert (root / "etc/app/log.conf").read_text() == "base\none\ntwo\n", where
        assert _state(root) == expected, where
        status = json.loads((root / "run/bootseed/status.json").read_text())
        count = _runcmd_count(root)
        assert count <= 1, where
        failed = {m["name"]: m["exception"] for m in status["modules"] if m["status"] == "failed"}
        if failed.get("scripts_user") == "NotRepeated":
            # The kill landed after a script had started: whether its effect happened
            # before the kill or not, it is not run again and nothing else is held back.
            assert failed == {"scripts_user": "NotRepeated"}, (where, failed)
        else:
            assert count == 1, where
            assert status["state"] == "done", (where, status["errors"], failed)
        shutil.rmtree(root.parent)
