from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from bootseed.late.modules.base import Frequency
from bootseed.late.state import StateStore, instance_dir_name
from bootseed.late.target import TargetRoot


def store(tmp_path: Path) -> StateStore:
    return StateStore(TargetRoot(tmp_path))


def test_first_instance_is_new_and_layout(tmp_path: Path) -> None:
    s = store(tmp_path)
    change = s.select_instance("i-abc")
    assert change.is_new and change.previous is None
    base = tmp_path / "var/lib/bootseed"
    assert os.readlink(base / "instance") == "instances/i-abc"
    assert (base / "data/instance-id").read_text() == "i-abc\n"
    assert not (base / "data/previous-instance-id").exists()
    assert stat.S_IMODE((base / "instances/i-abc").stat().st_mode) == 0o700


def test_same_then_new_instance(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.select_instance("i-one")
    again = s.select_instance("i-one")
    assert not again.is_new and again.previous == "i-one"
    new = s.select_instance("i-two")
    assert new.is_new and new.previous == "i-one"
    assert s.previous_instance_id() == "i-one"
    assert s.current_instance_id() == "i-two"
    assert os.readlink(tmp_path / "var/lib/bootseed/instance") == "instances/i-two"


def test_semaphores_by_frequency(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.select_instance("i-one")
    for freq in Frequency:
        assert not s.already_ran("mod", freq, "i-one")
        s.mark_ran("mod", freq, "i-one")
    assert s.already_ran("mod", Frequency.PER_INSTANCE, "i-one")
    assert s.already_ran("mod", Frequency.PER_ONCE, "i-one")
    # per-boot never has a semaphore: it always runs.
    assert not s.already_ran("mod", Frequency.PER_BOOT, "i-one")
    # A new instance starts without per-instance semaphores; per-once stays.
    s.select_instance("i-two")
    assert not s.already_ran("mod", Frequency.PER_INSTANCE, "i-two")
    assert s.already_ran("mod", Frequency.PER_ONCE, "i-two")
    sem = tmp_path / "var/lib/bootseed/instances/i-one/sem/mod"
    doc = json.loads(sem.read_text())
    assert doc["module"] == "mod" and doc["instance_id"] == "i-one"
    # Written atomically: no temp files left beside it.
    assert [p.name for p in sem.parent.iterdir()] == ["mod"]


def test_unsafe_instance_ids_get_distinct_safe_dirs() -> None:
    assert instance_dir_name("i-0123456789") == "i-0123456789"
    a, b = instance_dir_name("a/b"), instance_dir_name("a_b")
    assert "/" not in a and a != b
    assert instance_dir_name("..") not in ("..", ".")
    assert instance_dir_name("") != ""


def test_private_files_are_root_only(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.select_instance("i-one")
    path = s.write_private("i-one", "user-data.txt", b"#cloud-config\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
