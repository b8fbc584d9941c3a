"""Shared lab for the root-decision tests: ext4 images on loop devices, and boots of the
``rootswitch`` stage inside a private mount namespace.

No tests here. Each "boot" runs ``bootseed.early.rootswitch`` in ``unshare -m`` with a
fake ``${rootmnt}`` (a temp dir with the root image mounted on it, read-only as the
initramfs does), then reports what ended up mounted where as JSON. The namespace takes
every mount with it when it ends, so a failing test leaves nothing mounted on the host;
the loop devices are detached by the fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MiB = 1024 * 1024


def have_root_tools() -> bool:
    return os.geteuid() == 0 and os.path.exists("/dev/loop-control") and all(
        subprocess.run(["which", tool], capture_output=True).returncode == 0
        for tool in ("losetup", "mkfs.ext4", "unshare", "mount"))


needs_root = pytest.mark.skipif(not have_root_tools(),
                                reason="needs root, loop devices, mkfs.ext4 and unshare")


@dataclass
class Lab:
    tmp: Path
    loops: list[str] = field(default_factory=list)
    images: dict[str, Path] = field(default_factory=dict)

    def tree(self, name: str, files: dict[str, str | bytes]) -> Path:
        root = self.tmp / "trees" / name
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            if rel.startswith("sbin/") or rel.endswith(".sh"):
                path.chmod(0o755)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def ext4(self, name: str, label: str | None, files: dict[str, str | bytes],
             size_mib: int = 64) -> str:
        """An ext4 image made from ``files`` (mkfs -d: no mount), attached to a loop."""
        image = self.tmp / f"{name}.img"
        src = self.tree(name, files)
        cmd = ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
               "-d", str(src)]
        if label:
            cmd += ["-L", label]
        subprocess.run([*cmd, str(image), f"{size_mib}M"], check=True, capture_output=True)
        return self.attach(name, image)

    def blank(self, name: str, size_mib: int = 64) -> str:
        image = self.tmp / f"{name}.img"
        with open(image, "wb") as handle:
            handle.truncate(size_mib * MiB)
        return self.attach(name, image)

    def attach(self, name: str, image: Path) -> str:
        dev = subprocess.run(["losetup", "-f", "--show", str(image)], check=True,
                             capture_output=True, text=True).stdout.strip()
        self.loops.append(dev)
        self.images[name] = image
        return dev

    def digest(self, name: str) -> str:
        return hashlib.sha256(self.images[name].read_bytes()).hexdigest()

    def boot(self, root_dev: str, cmdline: str = "ro", *, seed: dict[str, Any] | None = None,
             init: str = "/sbin/init", write: dict[str, str] | None = None,
             root_rw: bool = False, devices: list[str] | None = None) -> dict[str, Any]:
        """One initramfs ``local-bottom`` run on ``root_dev``; what is mounted after."""
        work = self.tmp / f"boot-{len(list(self.tmp.glob('boot-*')))}"
        work.mkdir()
        spec = {"root_dev": root_dev, "cmdline": cmdline, "seed": seed, "init": init,
                "write": write or {}, "root_rw": root_rw, "work": str(work),
                "devices": devices if devices is not None else list(self.loops)}
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", sys.executable, "-c", BOOT_SCRIPT,
             json.dumps(spec)], capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        result["stderr"] = proc.stderr
        return result


# Runs inside the namespace: mount the root, run the stage, look around, print JSON.
BOOT_SCRIPT = r'''
import json, os, subprocess, sys, time
from pathlib import Path
from bootseed.early import blockdev, rootswitch
from bootseed.contract.seedcache import Seed, write_seed_cache, read_seed_cache

spec = json.loads(sys.argv[1])
work = Path(spec["work"])
rootmnt, stage, base, seed_dir = (work / n for n in ("root", "stage", "mnt", "run/bootseed"))
for d in (rootmnt, stage, base):
    d.mkdir(parents=True)
subprocess.run(["mount", "-o", "rw" if spec["root_rw"] else "ro", spec["root_dev"],
                str(rootmnt)], check=True)
if spec["seed"] is not None:
    write_seed_cache(Seed(**spec["seed"]), seed_dir)
started = time.monotonic()
report = rootswitch.run(rootswitch.Options(
    rootmnt=str(rootmnt), init=spec["init"], cmdline=spec["cmdline"], seed_dir=str(seed_dir),
    stage_dir=str(stage), mount_base=str(base), devices=spec["devices"]))
elapsed = time.monotonic() - started
for rel, text in spec["write"].items():
    (rootmnt / rel).write_text(text)

def read(rel):
    try:
        return (rootmnt / rel).read_text().strip()
    except OSError:
        return None

def mount(rel):
    entry = blockdev.mount_at(str(rootmnt / rel))
    if entry is None:
        return None
    return {"source": entry.source, "fstype": entry.fstype, "ro": entry.read_only}

left = [e.mountpoint for e in blockdev.mount_table()
        if e.mountpoint.startswith((str(stage), str(base)))]
seed = read_seed_cache(seed_dir)
side = seed_dir / "rootswitch.json"
print(json.dumps({
    "decision": report.decision,
    "problems": [f"{p.where}: {p.message}" for p in report.problems],
    "actions": [a.to_dict() for a in report.actions],
    "elapsed": elapsed,
    "root": mount(""),
    "marker": read("marker"),
    "original": mount("media/original-root"),
    "original_marker": read("media/original-root/marker"),
    "root_ro": mount("media/root-ro"),
    "root_rw": mount("media/root-rw"),
    "fstab": read("etc/fstab"),
    "files": {rel: read(rel) for rel in spec["write"]},
    "left_mounted": left,
    "seed_actions": [a.to_dict() for a in seed.actions] if seed else None,
    "seed_problems": [p.message for p in seed.problems] if seed else None,
    "side_record": json.loads(side.read_text()) if side.exists() else None,
}))
'''


def root_files(marker: str, extra: dict[str, str | bytes] | None = None
               ) -> dict[str, str | bytes]:
    """A minimal root: an init, a marker saying which root it is, an fstab."""
    files: dict[str, str | bytes] = {
        "sbin/init": "#!/bin/sh\n",
        "marker": marker + "\n",
        "etc/fstab": "LABEL=imgroot / ext4 defaults 0 1\n/swap none swap sw 0 0\n",
    }
    files.update(extra or {})
    return files


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    the_lab = Lab(tmp_path)
    try:
        yield the_lab
    finally:
        for dev in the_lab.loops:
            subprocess.run(["losetup", "-d", dev], capture_output=True)
