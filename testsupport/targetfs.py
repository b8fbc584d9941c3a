"""A minimal target root for module tests: a temp dir with its own /etc account files."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootseed.contract.actions import Action
from bootseed.late.modules.base import InstanceInfo, ModuleContext
from bootseed.late.target import TargetRoot

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """root:x:0:
daemon:x:1:
adm:x:4:
shadow:x:42:
sudo:x:27:
users:x:100:
nogroup:x:65534:
"""
SHADOW = """root:*:19500:0:99999:7:::
daemon:*:19500:0:99999:7:::
nobody:*:19500:0:99999:7:::
"""
GSHADOW = """root:*::
daemon:*::
adm:*::
shadow:*::
sudo:*::
users:*::
nogroup:*::
"""
LOGIN_DEFS = """# test login.defs
UID_MIN 1000
UID_MAX 60000
SYS_UID_MIN 100
SYS_UID_MAX 999
GID_MIN 1000
GID_MAX 60000
SYS_GID_MIN 100
SYS_GID_MAX 999
PASS_MAX_DAYS 99999
PASS_MIN_DAYS 0
PASS_WARN_AGE 7
UMASK 022
"""


def make_target(root: Path) -> TargetRoot:
    etc = root / "etc"
    (etc / "skel").mkdir(parents=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    for name, text in (("shadow", SHADOW), ("gshadow", GSHADOW)):
        (etc / name).write_text(text)
        os.chown(etc / name, 0, 42)
        os.chmod(etc / name, 0o640)
    (etc / "login.defs").write_text(LOGIN_DEFS)
    (etc / "skel" / ".bashrc").write_text("# skel bashrc\n")
    (etc / "skel" / ".config").mkdir()
    (etc / "skel" / ".config" / "app.conf").write_text("x=1\n")
    (etc / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n")
    os.chmod(etc / "sudoers", 0o440)
    (root / "root").mkdir(mode=0o700)
    return TargetRoot(root)


@dataclass
class Recorder:
    console: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


def make_ctx(
    target: TargetRoot,
    cfg: dict[str, Any],
    name: str = "test",
    instance: InstanceInfo | None = None,
    recorder: Recorder | None = None,
    recorded_actions: tuple[Action, ...] = (),
) -> ModuleContext:
    rec = recorder if recorder is not None else Recorder()
    instance_dir = target.root / "var/lib/bootseed/instances" / "i-test"
    instance_dir.mkdir(parents=True, exist_ok=True)
    return ModuleContext(
        name=name,
        cfg=cfg,
        target=target,
        instance=instance or InstanceInfo(instance_id="i-test", local_hostname="box"),
        instance_dir=instance_dir,
        log=logging.getLogger(f"test.{name}"),
        console=rec.console.append,
        add_secret=rec.secrets.append,
        boot_uptime=lambda: 1.0,
        recorded_actions=recorded_actions,
    )


def passwd_lines(target: TargetRoot, name: str, file: str = "/etc/passwd") -> list[list[str]]:
    return [
        line.split(":")
        for line in target.read_text(file).splitlines()
        if line.split(":")[0] == name
    ]


def snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes | str]]:
    """Every file and directory under root with mode, uid, gid and content."""
    out: dict[str, tuple[int, int, int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            body: bytes | str = os.readlink(path)
        elif path.is_file():
            body = path.read_bytes()
        else:
            body = b""
        out[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, body)
    return out
