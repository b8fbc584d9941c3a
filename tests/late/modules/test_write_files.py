from __future__ import annotations

import base64
import gzip
import stat
from pathlib import Path

import pytest
from bootseed.late.modules import users_groups, write_files, write_files_deferred
from bootseed.late.modules.base import Frequency, Stage
from bootseed.late.modules.write_files import MAX_DECOMPRESSED, WriteFilesError
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target, snapshot


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    t = make_target(tmp_path / "root")
    # A user and group that exist only in the target, with ids the host lacks.
    with open(t.path("/etc/passwd"), "a") as fh:
        fh.write("webapp:x:4321:4322::/srv/webapp:/bin/sh\n")
    with open(t.path("/etc/group"), "a") as fh:
        fh.write("webapp:x:4322:\nwebgrp:x:4400:\n")
    return t


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_spec() -> None:
    assert write_files.MODULE.stage is Stage.INIT
    assert write_files.MODULE.frequency is Frequency.PER_INSTANCE
    assert write_files_deferred.MODULE.stage is Stage.FINAL
    assert "write_files" in write_files.MODULE.schema["properties"]


def test_encodings_owners_modes(target: TargetRoot) -> None:
    payload = b"\x00binary\xffdata\n" * 10
    cfg = {
        "write_files": [
            {"path": "/etc/motd.d/hello", "content": "hi there\n"},
            {"path": "/opt/a.bin", "content": base64.b64encode(payload).decode(),
             "encoding": "b64", "permissions": "0600", "owner": "webapp:webgrp"},
            {"path": "/opt/b.txt", "content": base64.b64encode(gzip.compress(b"zipped\n")).decode(),
             "encoding": "gzip+base64", "permissions": 0o640, "owner": "webapp"},
            {"path": "/opt/c.txt", "content": gzip.compress(b"raw gzip bytes\n"),
             "encoding": "gz", "owner": ":webgrp", "permissions": "755"},
            {"path": "/opt/empty"},
        ]
    }  # fmt: skip
    write_files.MODULE.handle(make_ctx(target, cfg))
    motd = target.path("/etc/motd.d/hello")
    assert motd.read_text() == "hi there\n"
    assert mode_owner(motd) == (0o644, 0, 0)
    assert target.path("/opt/a.bin").read_bytes() == payload
    assert mode_owner(target.path("/opt/a.bin")) == (0o600, 4321, 4400)
    assert target.path("/opt/b.txt").read_bytes() == b"zipped\n"
    assert mode_owner(target.path("/opt/b.txt")) == (0o640, 4321, 0)
    assert target.path("/opt/c.txt").read_bytes() == b"raw gzip bytes\n"
    assert mode_owner(target.path("/opt/c.txt")) == (0o755, 0, 4400)
    assert target.path("/opt/empty").read_bytes() == b""
    assert not Path("/opt/a.bin").exists() or Path("/opt/a.bin").read_bytes() != payload


def test_idempotent_and_append(target: TargetRoot) -> None:
    target.write("/etc/issue", "Debian\n")
    cfg = {
        "write_files": [
            {"path": "/etc/app.conf", "content": "a=1\n", "permissions": "0640"},
            {"path": "/etc/issue", "content": "welcome\n", "append": True},
        ]
    }
    write_files.MODULE.handle(make_ctx(target, cfg))
    assert target.read_text("/etc/issue") == "Debian\nwelcome\n"
    before = snapshot(target.root)
    cfg_no_append = {"write_files": cfg["write_files"][:1]}
    write_files.MODULE.handle(make_ctx(target, cfg_no_append))
    assert snapshot(target.root) == before


def test_bad_entries_named_and_rest_written(target: TargetRoot) -> None:
    cfg = {
        "write_files": [
            {"path": "/ok/1", "content": "one"},
            {"content": "no path"},
            {"path": "/bad/enc", "content": "x", "encoding": "zip"},
            {"path": "/bad/owner", "content": "x", "owner": "nosuchuser"},
            {"path": "/bad/perm", "content": "x", "permissions": "rw-r--r--"},
            {"path": "/bad/b64", "content": "!!!notbase64", "encoding": "gz+b64"},
            {"path": "/ok/2", "content": "two"},
        ]
    }
    with pytest.raises(WriteFilesError) as info:
        write_files.MODULE.handle(make_ctx(target, cfg))
    text = str(info.value)
    assert "write_files[1]: 'path' is required" in text
    assert "write_files[2] (/bad/enc): unknown encoding 'zip'" in text
    assert "write_files[3] (/bad/owner)" in text and "nosuchuser" in text
    assert "write_files[4] (/bad/perm)" in text
    assert "write_files[5] (/bad/b64)" in text
    assert target.read_text("/ok/1") == "one" and target.read_text("/ok/2") == "two"
    for bad in ("enc", "owner", "perm", "b64"):
        assert not target.path(f"/bad/{bad}").exists()


def test_gzip_bomb_is_bounded(target: TargetRoot) -> None:
    bomb = gzip.compress(b"\0" * (MAX_DECOMPRESSED + 1))
    cfg = {"write_files": [{"path": "/big", "content": bomb, "encoding": "gzip"}]}
    with pytest.raises(WriteFilesError, match="exceeds"):
        write_files.MODULE.handle(make_ctx(target, cfg))
    assert not target.path("/big").exists()


def test_path_cannot_leave_target(target: TargetRoot) -> None:
    cfg = {"write_files": [{"path": "/../../escape", "content": "x"}]}
    with pytest.raises(WriteFilesError, match=r"'\.\.' is not allowed"):
        write_files.MODULE.handle(make_ctx(target, cfg))
    assert not (target.root.parent.parent / "escape").exists()


def test_deferred_waits_for_users(target: TargetRoot) -> None:
    cfg = {
        "users": [{"name": "late-user"}],
        "write_files": [
            {"path": "/home/late-user/notes", "content": "hello", "owner": "late-user:late-user",
             "defer": True},
            {"path": "/etc/early", "content": "now"},
        ],
    }  # fmt: skip
    write_files.MODULE.handle(make_ctx(target, cfg))
    assert target.read_text("/etc/early") == "now"
    assert not target.path("/home/late-user/notes").exists()
    users_groups.MODULE.handle(make_ctx(target, cfg))
    write_files_deferred.MODULE.handle(make_ctx(target, cfg))
    notes = target.path("/home/late-user/notes")
    assert notes.read_text() == "hello"
    # Ids come from the target's files (useradd-style: one above the highest used).
    [line] = [x for x in target.read_text("/etc/passwd").splitlines() if x.startswith("late-")]
    assert line.split(":")[2:4] == ["4322", "4401"]
    assert mode_owner(notes) == (0o644, 4322, 4401)
