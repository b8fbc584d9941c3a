"""An instance-id names a directory; no id, however long or odd, stops the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.late.state import MAX_DIR_NAME, instance_dir_name

from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import make_target

USER_DATA = "#cloud-config\nwrite_files:\n  - path: /etc/marker\n    content: here\n"


@pytest.mark.parametrize("instance_id", ["i-" + "x" * 301, "ü" * 200, "a/b" * 100, "..", "i-1"])
def test_any_instance_id_gets_a_bounded_directory(tmp_path: Path, instance_id: str) -> None:
    root = make_target(tmp_path / "root").root
    plant_seed(root, USER_DATA, instance_id=instance_id)
    run = Agent(root).run()
    assert run.status.state == "done", run.status.errors
    assert (root / "etc/marker").read_text() == "here"
    [idir] = (root / "var/lib/bootseed/instances").iterdir()
    assert len(idir.name) <= MAX_DIR_NAME
    assert (idir / "instance-id").read_text() == instance_id + "\n"


def test_long_ids_that_share_a_prefix_get_different_directories() -> None:
    first, second = "i-" + "a" * 300 + "1", "i-" + "a" * 300 + "2"
    assert instance_dir_name(first) != instance_dir_name(second)
    assert instance_dir_name("i-0123") == "i-0123"
