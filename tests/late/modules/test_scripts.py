"""scripts_user, scripts_vendor, scripts_per_boot / per_instance / per_once."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.late.execute import TargetExecError
from bootseed.late.modules import (
    scripts_per_boot,
    scripts_per_instance,
    scripts_per_once,
    scripts_user,
    scripts_vendor,
)
from bootseed.late.modules.base import Frequency

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx


def _script(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{body}\n")
    (folder / name).chmod(0o700)


@pytest.mark.parametrize(("module", "folder", "freq"), [
    (scripts_per_boot, "per-boot", Frequency.PER_BOOT),
    (scripts_per_instance, "per-instance", Frequency.PER_INSTANCE),
    (scripts_per_once, "per-once", Frequency.PER_ONCE),
])
def test_shared_script_dirs(tmp_path: Path, module, folder: str, freq: Frequency) -> None:
    assert module.MODULE.frequency is freq
    target = make_shell_root(tmp_path / "root")
    _script(target.path(f"/var/lib/bootseed/scripts/{folder}"), "a",
            f"echo $INSTANCE_ID >> /{folder}")
    module.MODULE.handle(make_ctx(target, {}))
    assert target.path(f"/{folder}").read_text() == "i-test\n"


def test_user_scripts_all_run_then_failure_raised(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    ctx = make_ctx(target, {})
    _script(ctx.instance_dir / "scripts", "a-fails", "exit 4")
    _script(ctx.instance_dir / "scripts", "b-ok", "echo b > /b")
    with pytest.raises(TargetExecError, match="exited with status 4"):
        scripts_user.MODULE.handle(ctx)
    assert target.path("/b").exists()


def test_vendor_scripts_prefix_and_disable(tmp_path: Path) -> None:
    target = make_shell_root(tmp_path / "root")
    ctx = make_ctx(target, {"vendor_data": {"prefix": ["/bin/sh", "-x"]}})
    # Not executable: the prefix interpreter runs it anyway.
    folder = ctx.instance_dir / "vendor_scripts"
    folder.mkdir(parents=True)
    (folder / "v").write_text("echo vendor > /v\n")
    (folder / "v").chmod(0o700)
    scripts_vendor.MODULE.handle(ctx)
    assert target.path("/v").read_text() == "vendor\n"
    assert "+ echo vendor" in target.path("/var/log/user_data.log").read_text()
    target.path("/v").unlink()
    ctx.cfg = {"vendor_data": {"enabled": False}}
    scripts_vendor.MODULE.handle(ctx)
    assert not target.path("/v").exists()
