"""Persistent agent state under ``/var/lib/bootseed`` of the target root.

Layout (paths as the target sees them)::

    /var/lib/bootseed/
      instance -> instances/<id>      the current instance (relative symlink)
      instances/<id>/                 one directory per instance-id ever seen
        sem/<module>                  per-instance semaphores
        user-data.txt                 user-data as received (0600)
        instance-id                   the id itself (the directory name is cut to 64
                                      characters with a hash suffix when needed)
        vendor-data.txt               vendor-data as received (0600)
        cloud-config.json             merged, processed cloud-config (0600)
        user-data.parts.json          summary of the processed parts (0600)
        schema-validated.json         schema verdict of that config, reused while unchanged (0600)
        scripts/                      user scripts for scripts_user (runcmd lands here)
        vendor_scripts/               vendor scripts for scripts_vendor
        boot-finished                 written when the final stage ends
      data/instance-id                id of the instance seen last
      data/previous-instance-id       id seen on the boot before that
      sem/<module>.once               per-once semaphores
      scripts/per-boot|per-instance|per-once/   scripts run by scripts_per_*

A semaphore is written atomically and only after its module succeeded, so a
crash mid-module leaves the module due again -- unless the module is not safe to
repeat (it runs user scripts): then ``<semaphore>.attempted`` is written before it
starts, and a run that finds that marker without the semaphore reports the module
as interrupted instead of running it a second time.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from bootseed.contract.atomicfile import atomic_write
from bootseed.late.model import Frequency
from bootseed.late.target import TargetRoot

STATE_DIR = "/var/lib/bootseed"
PER_BOOT_SCRIPTS = f"{STATE_DIR}/scripts/per-boot"
PER_INSTANCE_SCRIPTS = f"{STATE_DIR}/scripts/per-instance"
PER_ONCE_SCRIPTS = f"{STATE_DIR}/scripts/per-once"

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
# Directory names stay far below NAME_MAX (255): a long id is cut and gets a hash suffix,
# and the id itself is kept in the directory's ``instance-id`` file.
MAX_DIR_NAME = 64


def instance_dir_name(instance_id: str) -> str:
    """A directory name for ``instance_id``: the id itself when it is a safe file name,
    else a sanitised form plus a short hash so two ids never share a directory."""
    cleaned = _SAFE.sub("_", instance_id)
    if cleaned == instance_id and instance_id not in ("", ".", "..") and (
            len(instance_id) <= MAX_DIR_NAME):
        return instance_id
    # Imported here: loading OpenSSL costs seconds under an emulated CPU, and most ids
    # are plain file names that never get here.
    import hashlib

    digest = hashlib.sha256(instance_id.encode("utf-8")).hexdigest()[:12]
    stem = cleaned.strip(".")[: MAX_DIR_NAME - len(digest) - 1]
    return f"{stem or 'id'}-{digest}"


@dataclass(frozen=True)
class InstanceChange:
    """The verdict of comparing the seed's instance-id with the one seen last."""

    current: str
    previous: str | None
    is_new: bool


@dataclass(frozen=True)
class StateStore:
    target: TargetRoot

    # Paths on the host side, i.e. already joined to the target root.
    @property
    def base(self) -> Path:
        return self.target.real_path(STATE_DIR)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def once_sem_dir(self) -> Path:
        return self.base / "sem"

    @property
    def instance_link(self) -> Path:
        return self.base / "instance"

    def instance_dir(self, instance_id: str) -> Path:
        return self.base / "instances" / instance_dir_name(instance_id)

    def inside(self, host_path: Path) -> str:
        """The path as the target sees it (for commands run inside a chroot)."""
        return "/" + str(host_path.relative_to(self.target.root)).lstrip("/")

    def last_instance_id(self) -> str | None:
        return _read_line(self.data_dir / "instance-id")

    def previous_instance_id(self) -> str | None:
        return _read_line(self.data_dir / "previous-instance-id")

    def current_instance_id(self) -> str | None:
        """The instance the last ``select_instance`` chose (what later stages continue)."""
        return self.last_instance_id()

    def select_instance(self, instance_id: str) -> InstanceChange:
        """Make ``instance_id`` current. A different id than last time is a new instance;
        its directory starts without semaphores, so per-instance modules run again."""
        last = self.last_instance_id()
        idir = self.instance_dir(instance_id)
        for sub in (idir, idir / "sem", self.data_dir, self.once_sem_dir):
            sub.mkdir(mode=0o755, parents=True, exist_ok=True)
        # Root-only: the instance directory holds user-data and the processed config.
        os.chmod(idir, 0o700)
        atomic_write(idir / "instance-id", instance_id + "\n", mode=0o600)
        if last is not None:
            atomic_write(self.data_dir / "previous-instance-id", last + "\n", mode=0o644)
        atomic_write(self.data_dir / "instance-id", instance_id + "\n", mode=0o644)
        _atomic_symlink(Path("instances") / idir.name, self.instance_link)
        return InstanceChange(current=instance_id, previous=last, is_new=last != instance_id)

    def semaphore_path(self, module: str, frequency: Frequency, instance_id: str) -> Path | None:
        if frequency is Frequency.PER_INSTANCE:
            return self.instance_dir(instance_id) / "sem" / module
        if frequency is Frequency.PER_ONCE:
            return self.once_sem_dir / f"{module}.once"
        return None

    def already_ran(self, module: str, frequency: Frequency, instance_id: str) -> bool:
        path = self.semaphore_path(module, frequency, instance_id)
        return path is not None and path.exists()

    def mark_ran(self, module: str, frequency: Frequency, instance_id: str) -> None:
        path = self.semaphore_path(module, frequency, instance_id)
        if path is None:
            return
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        doc = {"module": module, "frequency": str(frequency), "instance_id": instance_id,
               "time": time.time()}
        atomic_write(path, json.dumps(doc, sort_keys=True) + "\n", mode=0o644)

    def attempted_path(self, module: str, frequency: Frequency, instance_id: str) -> Path | None:
        path = self.semaphore_path(module, frequency, instance_id)
        return None if path is None else path.with_name(path.name + ".attempted")

    def mark_attempted(self, module: str, frequency: Frequency, instance_id: str,
                       outcome: str = "started") -> None:
        """When a module that must not run twice begins its unrepeatable part: a crash
        from here on leaves this marker without the semaphore, and the next run reports
        instead of repeating."""
        path = self.attempted_path(module, frequency, instance_id)
        if path is None:
            return
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        doc = {"module": module, "frequency": str(frequency), "instance_id": instance_id,
               "time": time.time(), "outcome": outcome}
        atomic_write(path, json.dumps(doc, sort_keys=True) + "\n", mode=0o644)

    def earlier_attempt(self, module: str, frequency: Frequency, instance_id: str) -> str | None:
        """How an earlier run's attempt ended ("started" when it was cut off, else its
        error) if it never finished; None when there was none or it succeeded."""
        path = self.attempted_path(module, frequency, instance_id)
        if path is None or self.already_ran(module, frequency, instance_id):
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return "started"
        outcome = doc.get("outcome") if isinstance(doc, dict) else None
        return outcome if isinstance(outcome, str) else "started"

    def write_private(self, instance_id: str, name: str, data: bytes | str) -> Path:
        """A root-only file in the instance directory (user-data, processed config)."""
        path = self.instance_dir(instance_id) / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, data, mode=0o600)
        return path


def _read_line(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def _atomic_symlink(target: Path, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)
