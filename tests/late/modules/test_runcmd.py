from __future__ import annotations

import stat
from pathlib import Path

from bootseed.late.modules import runcmd, scripts_user
from bootseed.late.modules.base import Frequency, Stage

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx


def test_spec() -> None:
    assert runcmd.MODULE.stage is Stage.CONFIG
    assert runcmd.MODULE.frequency is Frequency.PER_INSTANCE


def test_writes_script_that_scripts_user_runs(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    ctx = make_ctx(target, {"runcmd": ["echo ran > /runcmd-ran", ["sh", "-c", "echo x y > /q"]]})
    runcmd.MODULE.handle(ctx)
    script = ctx.instance_dir / "scripts" / "runcmd"
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    # runcmd itself runs nothing; scripts_user does, in the final stage.
    assert not target.path("/runcmd-ran").exists()
    scripts_user.MODULE.handle(ctx)
    assert target.path("/runcmd-ran").read_text() == "ran\n"
    assert target.path("/q").read_text() == "x y\n"
