"""The ``bootseed`` verbs in-process, against temp target roots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.late.cli import main

from testsupport.chroot import make_shell_root
from testsupport.runenv import plant_seed
from testsupport.targetfs import make_target

USER_DATA = """#cloud-config
runcmd:
  - echo run >> /runcmd-count
final_message: finished $VERSION
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_shell_root(make_target(tmp_path / "root").root).root


def _run(root: Path, *extra: str) -> int:
    console = root.parent / "console.txt"
    return main(["run", "--root", str(root), "--network-timeout", "0",
                 "--console", str(console), *extra])


def test_run_status_analyze_query(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_seed(root, USER_DATA, metadata={"secret-token": "tok-should-not-show"})
    assert _run(root) == 0
    console = (root.parent / "console.txt").read_text()
    assert "finished 0." in console
    capsys.readouterr()

    assert main(["status", "--root", str(root)]) == 0
    assert capsys.readouterr().out.strip() == "status: done"
    assert main(["status", "--root", str(root), "--wait", "--json", "--timeout", "5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["state"] == "done" and doc["instance_id"] == "i-0001"
    assert main(["status", "--root", str(root), "--long"]) == 0
    assert "stage final:" in capsys.readouterr().out

    assert main(["analyze", "--root", str(root), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    durations = [m["duration"] for m in table["modules"]]
    assert durations == sorted(durations, reverse=True) and len(table["stages"]) == 4

    assert main(["query", "--root", str(root), "instance_id"]) == 0
    assert capsys.readouterr().out == "i-0001\n"
    assert main(["query", "--root", str(root), "v1.local_hostname"]) == 0
    assert capsys.readouterr().out == "seeded\n"
    assert main(["query", "--root", str(root), "merged_cfg.runcmd.0"]) == 0
    assert "runcmd-count" in capsys.readouterr().out
    # The redacted view (what a non-root user gets) hides the config and secrets.
    assert main(["query", "--root", str(root), "--redacted", "merged_cfg"]) == 0
    assert capsys.readouterr().out.strip() == "<redacted>"
    assert main(["query", "--root", str(root), "--redacted"]) == 0
    assert "tok-should-not-show" not in capsys.readouterr().out
    assert main(["query", "--root", str(root), "no.such.key"]) == 1
    assert "no key 'no'" in capsys.readouterr().err


def test_status_exit_codes(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--root", str(root)]) == 2  # not started
    assert "not started" in capsys.readouterr().out
    plant_seed(root, "#cloud-config\nruncmd: ['exit 9']\n")
    assert _run(root) == 0  # module failures do not fail the run
    assert main(["status", "--root", str(root), "--long"]) == 1
    out = capsys.readouterr().out
    assert "status: error" in out and "failed: scripts_user" in out
    plant_seed(root, "#cloud-config\nunknown_thing: 1\n", instance_id="i-0002")
    assert _run(root) == 0
    assert main(["status", "--root", str(root)]) == 2
    assert "degraded" in capsys.readouterr().out


def test_status_wait_is_bounded(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = root / "run/bootseed"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({"state": "running", "stage": "config"}))
    assert main(["status", "--root", str(root), "--wait", "--timeout", "0.5"]) == 2
    assert "running" in capsys.readouterr().out


def test_clean_simulates_a_fresh_instance(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_seed(root, USER_DATA)
    assert _run(root) == 0 and _run(root) == 0
    assert (root / "runcmd-count").read_text() == "run\n"
    assert main(["clean", "--root", str(root), "--logs"]) == 0
    out = capsys.readouterr().out
    assert "var/lib/bootseed" in out and "bootseed.log" in out
    assert "user_data.log" in out and "user-data.log" in out
    assert not (root / "var/log/user_data.log").exists()
    assert not (root / "var/log/user-data.log").is_symlink()
    assert (root / "run/bootseed/seed.json").exists()  # the seed stays without --seed
    assert _run(root) == 0
    assert (root / "runcmd-count").read_text() == "run\nrun\n"
    assert main(["clean", "--root", str(root), "--seed"]) == 0
    assert not (root / "run/bootseed").exists()


def test_schema_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("#cloud-config\nruncmd: [ls]\nno_such_key: [vim]\n")
    assert main(["schema", "--config-file", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {good} line 3: no_such_key" in out and out.endswith("valid\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("#cloud-config\nruncmd:\n  - ls\n  - {x: 1}\nfinal_message: [1]\n")
    assert main(["schema", "-c", str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"error: {bad} line 4: runcmd[1]" in captured.out
    assert f"{bad} line 5: final_message" in captured.out
    assert "invalid: 2 error(s)" in captured.err
    assert main(["schema", "-c", str(bad), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False
    broken = tmp_path / "broken.yaml"
    broken.write_text("runcmd: [unclosed\n")
    assert main(["schema", "-c", str(broken)]) == 1
    assert "not valid YAML" in capsys.readouterr().out


def test_schema_system(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_seed(root, "#cloud-config\nruncmd: 3\n")
    assert main(["schema", "--system", "--root", str(root)]) == 1
    assert "user-data" in capsys.readouterr().out
    assert main(["schema", "--dump", "--json"]) == 0
    assert "cloud_final_modules" in json.loads(capsys.readouterr().out)["schema"]["properties"]


def test_schema_dump_names_each_key_owner(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--dump"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    owners = dict((key, owner) for key, owner in rows)
    assert len(owners) == len(rows)  # one line per key
    assert [key for key, _ in rows] == sorted(owners)
    assert owners["runcmd"] == "runcmd"
    assert owners["write_files"] == "write_files"  # not write_files_deferred
    assert owners["no_ssh_fingerprints"] == "ssh_authkey_fingerprints"
    assert owners["hostname"] == "set_hostname"
    assert owners["cloud_init_modules"] == owners["merge_how"] == "(runner)"
    assert main(["schema", "--dump", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["owners"] == owners
    assert sorted(doc["schema"]["properties"]) == sorted(owners)


def test_subprocess_run_exit_and_help(root: Path) -> None:
    plant_seed(root, USER_DATA)
    # The installed console script, as a user runs it.
    exe = [str(Path(sys.executable).with_name("bootseed"))]
    proc = subprocess.run([*exe, "run", "--root", str(root), "--network-timeout", "0",
                           "--console", str(root.parent / "c.txt"), "--json"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "NOTIFY_SOCKET": ""})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "done"
    bad = subprocess.run([*exe, "run", "--root", str(root / "absent")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "not a directory" in bad.stderr
    for verb in ("run", "status", "analyze", "schema", "query", "clean"):
        assert subprocess.run([*exe, verb, "--help"], capture_output=True,
                              check=False).returncode == 0
