from __future__ import annotations

import base64
import gzip
import os
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import seed_random
from bootseed.late.modules.base import InstanceInfo
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import Recorder, make_ctx, make_target

SEED_FILE = "/var/lib/seed"


def _run(target: TargetRoot, cfg: Any, meta: dict[str, Any] | None = None,
         rec: Recorder | None = None) -> list[Any]:
    ctx = make_ctx(target, {"random_seed": cfg} if cfg is not None else {}, recorder=rec,
                   instance=InstanceInfo(instance_id="i-1", metadata=meta or {}))
    seed_random.MODULE.handle(ctx)
    return ctx.problems


@pytest.mark.parametrize(("data", "encoding"), [
    ("seed-bytes", "raw"), ("seed-bytes", None),
    (base64.b64encode(b"seed-bytes").decode(), "base64"),
    (base64.b64encode(b"seed-bytes").decode(), "b64"),
    # mtime=0: the same bytes (and test ids) in every process, so pytest-xdist workers agree
    (gzip.compress(b"seed-bytes", mtime=0), "gzip"),
    (gzip.compress(b"seed-bytes", mtime=0), "gz"),
])
def test_data_in_every_encoding_is_appended(tmp_path: Path, data: Any, encoding: Any) -> None:
    target = make_target(tmp_path)
    target.write(SEED_FILE, b"old:", mode=0o640)
    cfg = {"file": SEED_FILE, "data": data, **({"encoding": encoding} if encoding else {})}
    rec = Recorder()
    assert _run(target, cfg, rec=rec) == []
    assert target.read_bytes(SEED_FILE) == b"old:seed-bytes"
    assert target.lstat(SEED_FILE).st_mode & 0o777 == 0o640
    if isinstance(data, str):
        assert data in rec.secrets


def test_meta_data_seed_follows_the_data_without_cloud_config(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    assert _run(target, {"file": SEED_FILE, "data": "a"}, {"random_seed": "meta"}) == []
    assert target.read_bytes(SEED_FILE) == b"ameta"
    # Without any cloud-config the meta-data seed goes to /dev/urandom: not in a --root target.
    (note,) = _run(target, None, {"random_seed": "meta"})
    assert (note.where, note.level) == ("random_seed.file", Level.NOTE)
    assert not (tmp_path / "dev").exists()


def test_nothing_to_seed_does_nothing(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    assert _run(target, None) == []
    assert not (tmp_path / "dev").exists()


@pytest.mark.parametrize(("cfg", "where"), [
    ({"file": SEED_FILE, "data": "x", "encoding": "rot13"}, "random_seed.encoding"),
    ({"file": SEED_FILE, "data": "!!!", "encoding": "gz"}, "random_seed.data"),
    ({"file": "relative", "data": "x"}, "random_seed.file"),
    ("x", "random_seed"),
])
def test_bad_values_reported_nothing_written(tmp_path: Path, cfg: Any, where: str) -> None:
    target = make_target(tmp_path)
    (problem,) = _run(target, cfg)
    assert problem.where == where and not target.exists(SEED_FILE)


def test_command_runs_in_the_target_with_the_seed_file(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    make_shell_root(tmp_path)
    target.write("/usr/bin/seeder", '#!/bin/sh\necho "$RANDOM_SEED_FILE $1" > /var/lib/ran\n',
                 mode=0o755)
    assert _run(target, {"file": SEED_FILE, "data": "x",
                         "command": ["seeder", "arg"]}) == []
    assert target.read_text("/var/lib/ran") == f"{SEED_FILE} arg\n"


def test_missing_command_is_skipped_unless_required(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    make_shell_root(tmp_path)
    assert _run(target, {"command": ["pollinate", "-q"]}) == []
    (problem,) = _run(target, {"command": ["pollinate"], "command_required": True})
    assert problem.where == "random_seed.command" and "pollinate" in problem.message


def test_failing_command_is_reported(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    make_shell_root(tmp_path)
    target.write("/usr/bin/seeder", "#!/bin/sh\nexit 4\n", mode=0o755)
    (problem,) = _run(target, {"command": ["seeder"]})
    assert "status 4" in problem.message


def test_a_link_out_of_the_target_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"host\n")
    root = tmp_path / "root"
    root.mkdir()
    target = make_target(root)
    (root / "var/lib").mkdir(parents=True)
    os.symlink(str(outside), root / SEED_FILE.lstrip("/"))
    (problem,) = _run(target, {"file": SEED_FILE, "data": "x"})
    assert "not a regular file" in problem.message
    assert outside.read_bytes() == b"host\n"
