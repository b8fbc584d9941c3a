from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from bootseed.late.execute import (
    TargetExecError,
    commands_to_script,
    run_in_target,
    run_script_dir,
    start_detached,
)
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root


def test_commands_to_script_quotes_lists() -> None:
    script = commands_to_script(["echo a > /x", ["printf", "%s\n", "a b", 3]], "runcmd")
    assert script == "#!/bin/sh\necho a > /x\nprintf '%s\n' 'a b' 3\n"
    with pytest.raises(TargetExecError, match=r"runcmd\[1\]"):
        commands_to_script(["ok", {"bad": 1}], "runcmd")


def test_refuses_target_without_shell(tmp_path: Path) -> None:
    with pytest.raises(TargetExecError, match="cannot run commands in a target without /bin/sh"):
        run_in_target(TargetRoot(tmp_path), ["/bin/true"])


def test_runs_inside_chroot_and_logs_output(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    run_in_target(target, ["/bin/sh", "-c", "echo out; echo err >&2; echo made > /made"],
                  env={"INSTANCE_ID": "i-9"})
    assert target.path("/made").read_text() == "made\n"
    log = target.path("/var/log/user_data.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "out\nerr\n" in log.read_text()
    assert os.readlink(target.path("/var/log/user-data.log")) == "user_data.log"
    with pytest.raises(TargetExecError, match="exited with status 3"):
        run_in_target(target, ["/bin/sh", "-c", "exit 3"])


def test_old_name_link_replaces_a_planted_link_and_spares_an_old_log(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    outside = tmp_path / "outside.log"
    outside.write_text("host file\n")
    target.path("/var/log").mkdir(parents=True, exist_ok=True)
    target.path("/var/log/user-data.log").symlink_to(outside)
    run_in_target(target, ["/bin/sh", "-c", "echo one"])
    assert os.readlink(target.path("/var/log/user-data.log")) == "user_data.log"
    assert outside.read_text() == "host file\n"
    other = make_shell_root(tmp_path / "other")
    other.path("/var/log").mkdir(parents=True, exist_ok=True)
    other.path("/var/log/user-data.log").write_text("older boots\n")
    run_in_target(other, ["/bin/sh", "-c", "echo two"])
    assert other.path("/var/log/user-data.log").read_text() == "older boots\n"
    assert "two\n" in other.path("/var/log/user_data.log").read_text()


def test_script_dir_runs_all_in_order_and_reports_failures(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    folder = target.path("/scripts")
    folder.mkdir()
    for name, body in (("10-a", "echo a >> /order"), ("20-fail", "exit 1"),
                       ("30-c", "echo c >> /order")):
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o700)
    (folder / "README").write_text("not a script\n")
    with pytest.raises(TargetExecError, match="1 of 3 scripts failed"):
        run_script_dir(target, folder)
    assert target.path("/order").read_text() == "a\nc\n"
    assert run_script_dir(target, target.path("/absent")) == []


def test_script_dir_says_when_the_first_script_is_about_to_start(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    folder = target.path("/scripts")
    folder.mkdir()
    seen: list[bool] = []

    def before_first() -> None:
        seen.append(target.path("/order").exists())

    (folder / "README").write_text("not a script\n")
    assert run_script_dir(target, folder, before_first=before_first) == []
    assert seen == []  # nothing ran, so nothing could be repeated
    for name in ("10-a", "20-b"):
        (folder / name).write_text(f"#!/bin/sh\necho {name} >> /order\n")
        (folder / name).chmod(0o700)
    assert run_script_dir(target, folder, before_first=before_first) == ["10-a", "20-b"]
    assert seen == [False]  # once, before the first script's effect


def test_start_detached_returns_at_once_and_logs(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    pid = start_detached(target, ["/bin/sh", "-c", "echo started; echo done > /done"],
                         "/var/log/bg.log")
    assert pid > 0
    # Not os.waitpid: the child belongs to subprocess, whose clean-up of finished
    # children (at any later Popen, from any thread) may reap it first.
    deadline = time.monotonic() + 60
    while not target.path("/done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert target.path("/done").read_text() == "done\n"
    log = target.path("/var/log/bg.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().endswith("started\n")
    with pytest.raises(TargetExecError, match="cannot run commands in a target without"):
        start_detached(TargetRoot(tmp_path / "empty"), ["/bin/true"], "/log")
