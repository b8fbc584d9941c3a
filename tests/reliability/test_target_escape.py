"""No file effect leaves the target root, whatever symlinks the target holds.

For each place a module or library writes (write_files, deferred and appended,
users' homes and authorized_keys, root's keys, ssh host keys, /etc/hostname,
/etc/hosts, sudoers, script parts, the agent's state and log) a symlink is
planted on the way: to a directory outside, to a file outside (a 0600 secret),
dangling to a name outside, in the middle of the path, both as an absolute and
as a relative (``../..``) link. After a full ``Runner`` run nothing outside the
target has been created, changed or removed, and the secret's bytes appear
nowhere inside it.
"""

from __future__ import annotations

import os
import shutil
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import make_target, snapshot

SECRET = b"host-only-secret-5f1c0e\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVzY2FwZS10ZXN0LWtleS1hYWFhYWFhYWFhYWFhYWFh e@t"

CLOUD_CONFIG = f"""#cloud-config
hostname: escape-host
manage_etc_hosts: true
ssh_genkeytypes: [ed25519]
ssh_authorized_keys: ["{KEY}"]
users:
  - name: bob
    ssh_authorized_keys: ["{KEY}"]
    sudo: "ALL=(ALL) NOPASSWD:ALL"
write_files:
  - path: /etc/app/conf/plain.conf
    content: "plain\\n"
  - path: /etc/app/appended.conf
    content: "appended\\n"
    append: true
  - path: /etc/app/deferred.conf
    content: "deferred\\n"
    defer: true
"""


def _user_data() -> str:
    msg = MIMEMultipart()
    msg.attach(MIMEText(CLOUD_CONFIG, "cloud-config"))
    msg.attach(MIMEText("#!/bin/sh\necho per-boot\n", "x-shellscript-per-boot"))
    return msg.as_string()


# (symlink inside the target, what it points at). "dir" is a directory outside,
# "secret" a 0600 file outside, "missing" a name outside that does not exist.
CASES = [
    ("/etc/app", "dir"),
    ("/etc/app/conf", "dir"),  # in the middle of the path
    ("/etc/app/appended.conf", "secret"),
    ("/etc/app/appended.conf", "missing"),
    ("/etc/app/deferred.conf", "missing"),
    ("/etc/app/conf/plain.conf", "secret"),
    ("/home", "dir"),
    ("/home/bob", "dir"),
    ("/root/.ssh", "dir"),
    ("/root/.ssh/authorized_keys", "secret"),
    ("/etc/ssh", "dir"),
    ("/etc/hostname", "secret"),
    ("/etc/hosts", "secret"),
    ("/etc/sudoers", "secret"),
    ("/etc/sudoers.d", "dir"),
    ("/var/lib/bootseed", "dir"),
    ("/var/lib", "dir"),
    ("/var/log", "dir"),
]


def _plant(root: Path, inside: str, kind: str, outside: Path, relative: bool) -> None:
    pointee = {"dir": outside / "dir", "secret": outside / "secret",
               "missing": outside / "missing"}[kind]
    link = root / inside.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    elif link.exists() or link.is_symlink():
        link.unlink()
    os.symlink(os.path.relpath(pointee, link.parent) if relative else pointee, link)


def _secret_inside(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and SECRET.strip() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
@pytest.mark.parametrize(("inside", "kind"), CASES, ids=[f"{p}->{k}" for p, k in CASES])
def test_no_effect_outside_the_target(tmp_path: Path, inside: str, kind: str,
                                      relative: bool) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir" / "keep").write_text("unchanged\n")
    (outside / "secret").write_bytes(SECRET)
    os.chmod(outside / "secret", 0o600)
    root = make_target(tmp_path / "root").root
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    plant_seed(root, _user_data())
    _plant(root, inside, kind, outside, relative)
    before = snapshot(outside)

    run = Agent(root).run()

    assert snapshot(outside) == before, f"{inside} -> {kind}: changed outside the target"
    assert _secret_inside(root) == [], "a host file was copied into the target"
    assert {m.name for m in run.status.modules} >= {"write_files", "users_groups", "ssh"}


def test_a_plain_target_still_gets_every_effect(tmp_path: Path) -> None:
    """The control: without planted links the same run writes every file checked above."""
    root = make_target(tmp_path / "root").root
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    plant_seed(root, _user_data())
    Agent(root).run()
    for inside in ("etc/app/conf/plain.conf", "etc/app/appended.conf", "etc/app/deferred.conf",
                   "home/bob/.ssh/authorized_keys", "root/.ssh/authorized_keys",
                   "etc/ssh/ssh_host_ed25519_key", "etc/hostname",
                   "etc/sudoers.d/90-bootseed-users", "var/lib/bootseed/instance",
                   "var/lib/bootseed/scripts/per-boot"):
        assert (root / inside).exists() or (root / inside).is_symlink(), inside
    assert "escape-host" in (root / "etc/hosts").read_text()
