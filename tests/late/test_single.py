"""``bootseed single`` (and ``cloud-init single`` on it): one module, its frequency honoured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bootseed.late.cli import main
from bootseed.late.compat.cli import main as cloud_init

from testsupport.chroot import make_shell_root
from testsupport.runenv import plant_seed
from testsupport.targetfs import make_target

USER_DATA = """#cloud-config
write_files:
  - path: /etc/single-written
    content: written
runcmd:
  - echo run >> /runcmd-count
  - test -e /fail-now && exit 9 || true
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_shell_root(make_target(tmp_path / "root").root).root


def _run(root: Path) -> int:
    return main(["run", "--root", str(root), "--network-timeout", "0",
                 "--console", str(root.parent / "console.txt")])


def test_single_honours_the_semaphore_unless_always(root: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    plant_seed(root, USER_DATA)
    assert _run(root) == 0
    status_before = (root / "run/bootseed/status.json").read_text()
    written = root / "etc/single-written"
    written.unlink()
    capsys.readouterr()
    # per-instance and already ran: skipped, exit 0, nothing written.
    assert main(["single", "--root", str(root), "--name", "write_files"]) == 0
    assert capsys.readouterr().out.startswith("write_files (per-instance): skipped: already ran")
    assert not written.exists()
    # always: runs again; cloud-init's spelling of the name works too.
    assert main(["single", "--root", str(root), "--name", "cc_write_files",
                 "--frequency", "always"]) == 0
    assert capsys.readouterr().out.startswith("write_files (per-boot): ok in ")
    assert written.read_text() == "written"
    # The final stage's scripts_user: again with always, and its failure is exit 1.
    assert (root / "runcmd-count").read_text() == "run\n"
    assert main(["single", "--root", str(root), "--name", "scripts-user",
                 "--frequency", "always", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["module"]["status"] == "ok"
    assert (root / "runcmd-count").read_text() == "run\nrun\n"
    (root / "fail-now").write_text("")
    assert main(["single", "--root", str(root), "--name", "scripts_user",
                 "--frequency", "always"]) == 1
    assert capsys.readouterr().out.startswith("scripts_user (per-boot): failed: ")
    # The status stays the last run's.
    assert (root / "run/bootseed/status.json").read_text() == status_before
    # cloud-init's command maps onto it, exit codes and all.
    written.unlink()
    assert cloud_init(["single", "--root", str(root), "--name", "write_files"]) == 0
    assert not written.exists()
    assert cloud_init(["single", "--root", str(root), "--name", "write_files",
                       "--frequency", "always"]) == 0
    assert written.exists()
    assert cloud_init(["single", "--root", str(root), "--name", "scripts_user",
                       "--frequency", "always"]) == 1


def test_single_unknown_module_or_nothing_to_run_on(root: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["single", "--root", str(root), "--name", "write_files"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no seed cache" in err
    plant_seed(root, USER_DATA)
    assert _run(root) == 0
    # The processed config is what a module runs on; without it there is nothing.
    config = next((root / "var/lib/bootseed/instances").glob("*/cloud-config.json"))
    saved = config.read_bytes()
    config.unlink()
    capsys.readouterr()
    assert main(["single", "--root", str(root), "--name", "write_files"]) == 1
    assert "user-data not processed yet" in capsys.readouterr().err
    config.write_bytes(saved)
    for command in (main, cloud_init):
        assert command(["single", "--root", str(root), "--name", "no_such_module"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "unknown module 'no_such_module'" in err
    with pytest.raises(SystemExit) as usage:
        main(["single", "--root", str(root), "--name", "write_files", "--frequency", "sometimes"])
    assert usage.value.code == 2
