"""Marking boots good: health checks, the counter reset, the boot_health module in a run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bootseed.late.fallback import grubenv
from bootseed.late.fallback.health import mark_boot, read_record
from bootseed.late.fallback.install import install
from bootseed.late.fallback.report import boot_summary
from bootseed.late.target import TargetRoot

from testsupport.runenv import Agent, module, plant_seed

from .test_fallback import CMDLINE, make_root, opts, proc_with

GRUBENV = "boot/grub/grubenv"


def installed_root(tmp_path: Path, tries: int = 2) -> Path:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts(tries=tries))
    return root


def health_check(root: Path, name: str, body: str) -> None:
    path = root / "etc/bootseed/health.d" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def tries(root: Path) -> str | None:
    return grubenv.read(root / GRUBENV).get("bootseed_tries")


def test_default_boot_resets_the_counter(tmp_path: Path) -> None:
    root = installed_root(tmp_path, tries=3)
    grubenv.update(root / GRUBENV, {"bootseed_tries": "1"})  # GRUB counted two boots down
    record = mark_boot(TargetRoot(root), proc_with(tmp_path, CMDLINE))
    assert record.marked_good and record.counter == "3" and tries(root) == "3"
    assert grubenv.read(root / GRUBENV)["bootseed_lab_args"] == "x=1"


def test_failed_health_check_keeps_counting_down(tmp_path: Path) -> None:
    root = installed_root(tmp_path)
    grubenv.update(root / GRUBENV, {"bootseed_tries": "1"})
    health_check(root, "10-ok", "exit 0")
    health_check(root, "20-db", 'echo "database not answering" >&2; exit 3')
    (root / "etc/bootseed/health.d/30-not-executable").write_text("exit 1\n")
    record = mark_boot(TargetRoot(root), proc_with(tmp_path, CMDLINE))
    assert not record.marked_good and tries(root) == "1"
    assert [(c.name, c.ok) for c in record.checks] == [("10-ok", True), ("20-db", False)]
    assert record.checks[1].detail == "exit 3: database not answering"
    assert "20-db" in record.note


def test_health_checks_learn_the_entry(tmp_path: Path) -> None:
    root = installed_root(tmp_path)
    health_check(root, "entry", f'echo "$BOOTSEED_BOOT_ENTRY" > {tmp_path}/entry')
    mark_boot(TargetRoot(root), proc_with(tmp_path, f"{CMDLINE} bootseed.fallback=x"))
    assert (tmp_path / "entry").read_text() == "fallback\n"


def test_fallback_boot_leaves_the_counter_used_up(tmp_path: Path) -> None:
    root = installed_root(tmp_path)
    grubenv.update(root / GRUBENV, {"bootseed_tries": "0"})
    proc = proc_with(tmp_path, f"{CMDLINE} panic=10 bootseed.fallback=tries-exhausted")
    record = mark_boot(TargetRoot(root), proc)
    assert record.origin.from_fallback and record.origin.reason == "tries-exhausted"
    assert not record.marked_good and tries(root) == "0"
    assert "stays used up" in record.note
    summary = boot_summary(TargetRoot(root), proc)
    assert summary["from_fallback"] is True and "used up its boot tries" in str(
        summary["explanation"])


def test_not_installed_does_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    before = (root / GRUBENV).read_bytes()
    record = mark_boot(TargetRoot(root), proc_with(tmp_path, CMDLINE))
    assert not record.installed and (root / GRUBENV).read_bytes() == before


def test_module_in_a_run_marks_the_boot_and_records_it(tmp_path: Path) -> None:
    root = installed_root(tmp_path)
    grubenv.update(root / GRUBENV, {"bootseed_tries": "1"})
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text(CMDLINE + "\n")
    plant_seed(root, "#cloud-config\n{}\n")
    run = Agent(root).run()
    assert module(run, "boot_health").status == "ok"
    # It runs after the listed final modules (the boot has done its work by then).
    names = [m.name for m in run.status.modules]
    assert names.index("boot_health") > names.index("final_message")
    assert tries(root) == "2"
    record = read_record(root / "run/bootseed")
    assert record is not None and record["marked_good"] is True
    assert os.stat(root / "run/bootseed/fallback.json").st_mode & 0o777 == 0o644


def test_module_fails_on_a_failed_check_and_on_fallback_says_so(tmp_path: Path) -> None:
    root = installed_root(tmp_path)
    health_check(root, "bad", "exit 1")
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text(f"{CMDLINE} bootseed.fallback=default-not-loaded\n")
    plant_seed(root, "#cloud-config\n{}\n")
    run = Agent(root).run()
    result = module(run, "boot_health")
    assert result.status == "failed" and "health checks failed" in (result.error or "")
    assert any("this boot came from the fallback entry" in line for line in run.console)
    doc = json.loads((root / "run/bootseed/fallback.json").read_text())
    assert doc["origin"]["reason"] == "default-not-loaded"


def test_bootseed_status_says_the_boot_came_from_fallback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bootseed.late.cli import main

    root = installed_root(tmp_path)
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text(f"{CMDLINE} bootseed.fallback=tries-exhausted\n")
    plant_seed(root, "#cloud-config\n{}\n")
    Agent(root).run()
    main(["status", "--root", str(root)])  # exit code: the other modules' business here
    out = capsys.readouterr().out
    assert "boot: FALLBACK entry (tries-exhausted): the default entry used up its boot tries" \
        in out
    main(["status", "--root", str(root), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["boot_entry"]["from_fallback"] is True
    main(["status", "--root", str(root), "--long"])
    assert "boot entry: FALLBACK (tries-exhausted)" in capsys.readouterr().out
    (root / "proc/cmdline").write_text(CMDLINE + "\n")
    main(["status", "--root", str(root), "--long"])
    assert "boot entry: default" in capsys.readouterr().out
    assert main(["fallback", "status", "--root", str(root)]) == 0


def test_bootseed_status_without_fallback_is_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bootseed.late.cli import main

    root = make_root(tmp_path)
    plant_seed(root, "#cloud-config\n{}\n")
    Agent(root).run()
    main(["status", "--root", str(root), "--json"])
    assert "boot_entry" not in json.loads(capsys.readouterr().out)


def test_mark_unit_covers_boots_the_agent_does_not_mark(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bootseed.late.cli import main

    root = installed_root(tmp_path)
    unit = root / "etc/systemd/system/bootseed-fallback-mark.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/bootseed-fallback-mark.service"
    assert "ExecStart=/usr/bin/bootseed fallback mark-good --safety-net" in unit.read_text()
    assert "ConditionPathExists=!/run/bootseed/fallback.json" in unit.read_text()
    assert os.readlink(wants) == "/etc/systemd/system/bootseed-fallback-mark.service"
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text(CMDLINE + "\n")
    (root / "run/bootseed").mkdir(parents=True)
    grubenv.update(root / GRUBENV, {"bootseed_tries": "1"})
    mark = ["fallback", "mark-good", "--root", str(root), "--safety-net"]
    # The generator added the agent and its final stage has not finished: not marked.
    (root / "run/bootseed-generator").write_text("enabled: ds=nocloud on the command line\n")
    (root / "run/bootseed/status.json").write_text(json.dumps(
        {"state": "error", "stages": {"local": {"start": 1.0, "end": None}}}))
    assert main(mark) == 0
    assert "has not finished its final stage" in capsys.readouterr().out
    assert tries(root) == "1" and not (root / "run/bootseed/fallback.json").exists()
    # Its final stage ran, but without boot_health (a custom module list): marked.
    (root / "run/bootseed/status.json").write_text(json.dumps(
        {"state": "done", "stages": {"final": {"start": 1.0, "end": 2.0}}}))
    assert main(mark) == 0
    assert "boot marked good: 2 tries" in capsys.readouterr().out
    assert tries(root) == "2" and (root / "run/bootseed/fallback.json").is_file()
    # No seed: the generator left the agent out; the unit marks the boot.
    grubenv.update(root / GRUBENV, {"bootseed_tries": "1"})
    (root / "run/bootseed-generator").write_text("disabled: no seed found\n")
    (root / "run/bootseed/status.json").unlink()
    assert main(mark) == 0
    assert tries(root) == "2"
