from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.late.execute import TargetExecError
from bootseed.late.modules import bootcmd
from bootseed.late.modules.base import Frequency, Stage
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx


def test_spec() -> None:
    assert bootcmd.MODULE.stage is Stage.INIT
    assert bootcmd.MODULE.frequency is Frequency.PER_BOOT


def test_runs_commands_with_instance_id(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    cfg = {"bootcmd": ["echo $INSTANCE_ID > /iid", ["sh", "-c", "echo 'two words' > /argv"]]}
    bootcmd.MODULE.handle(make_ctx(target, cfg))
    assert target.path("/iid").read_text() == "i-test\n"
    assert target.path("/argv").read_text() == "two words\n"


def test_failure_raises(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    with pytest.raises(TargetExecError, match="bootcmd: exited with status 1"):
        bootcmd.MODULE.handle(make_ctx(target, {"bootcmd": ["false"]}))


def test_refused_without_shell(tmp_path: Path) -> None:
    target = TargetRoot(tmp_path)
    with pytest.raises(TargetExecError, match="without /bin/sh"):
        bootcmd.MODULE.handle(make_ctx(target, {"bootcmd": ["true"]}))
