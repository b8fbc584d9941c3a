"""Values that end up in line-oriented system files are checked against that file's
grammar: a line break of any kind (anything ``str.splitlines`` splits on) never
splits a record, the bad item is reported, and the rest still applies."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.late.modules import set_hostname, ssh, update_etc_hosts, users_groups
from bootseed.late.modules.base import InstanceInfo
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxpbmUtZmlsZXMta2V5LWFhYWFhYWFhYWFhYWFhYWFh"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxpbmUtZmlsZXMta2V5LWJiYmJiYmJiYmJiYmJiYmJi"
LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
NO_DEFAULT_USER = {"system_info": {"default_user": None}}


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    t = make_target(tmp_path / "root")
    (t.root / "etc/ssh").mkdir()
    return t


def _records(target: TargetRoot, inside: str) -> list[str]:
    """Lines as libc and sshd split them: at '\\n' only."""
    return target.read_text(inside).split("\n")[:-1]


def _every_record_named(target: TargetRoot) -> None:
    for inside in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"):
        for record in _records(target, inside):
            name = record.split(":")[0]
            assert name and not any(c in name for c in LINE_BREAKS), (inside, record)


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[repr(b) for b in LINE_BREAKS])
def test_user_and_group_names_with_a_line_break(target: TargetRoot, brk: str) -> None:
    cfg = {"users": [{"name": f"bob{brk}", "sudo": "ALL=(ALL) ALL"},
                     {"name": "carol", "sudo": "ALL=(ALL) ALL"}],
           "groups": [f"devs{brk}", "ops"]}
    with pytest.raises(users_groups.UsersGroupsError) as err:
        users_groups.handle(make_ctx(target, cfg))
    assert "users[0]" in str(err.value) and "groups[0]" in str(err.value)
    _every_record_named(target)
    names = [r.split(":")[0] for r in _records(target, "/etc/passwd")]
    assert "carol" in names and not any(n.startswith("bob") for n in names)
    assert "ops" in [r.split(":")[0] for r in _records(target, "/etc/group")]
    sudoers = _records(target, "/etc/sudoers.d/90-bootseed-users")
    assert [r for r in sudoers if r and not r.startswith("#")] == ["carol ALL=(ALL) ALL"]


@pytest.mark.parametrize("field", ["gecos", "shell", "homedir"])
def test_other_account_fields_with_a_line_break(target: TargetRoot, field: str) -> None:
    value = {"gecos": "Bob\u2028Evil", "shell": "/bin/sh\x85", "homedir": "/home/b\rob"}[field]
    cfg = {"users": [{"name": "bob", field: value}, {"name": "carol"}]}
    with pytest.raises(users_groups.UsersGroupsError, match="users\\[0\\]"):
        users_groups.handle(make_ctx(target, cfg))
    _every_record_named(target)
    assert not any(c in target.read_text("/etc/passwd") for c in LINE_BREAKS[1:])
    assert "carol" in [r.split(":")[0] for r in _records(target, "/etc/passwd")]


@pytest.mark.parametrize("name", ["web\n.example.com", "web.example.com\u2028x",
                                  "web\x85.example.com", "w\reb"])
def test_hostname_with_a_line_break_is_refused(target: TargetRoot, name: str) -> None:
    (target.root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    cfg = {"fqdn": name, "manage_etc_hosts": True}
    with pytest.raises(ValueError, match="not a valid host name"):
        set_hostname.handle(make_ctx(target, cfg))
    with pytest.raises(ValueError, match="not a valid host name"):
        update_etc_hosts.handle(make_ctx(target, cfg))
    assert not target.exists("/etc/hostname")
    assert target.read_text("/etc/hosts") == "127.0.0.1 localhost\n"


def test_hostname_from_meta_data_with_a_line_break(target: TargetRoot) -> None:
    info = InstanceInfo(instance_id="i-1", local_hostname="box\n.evil")
    with pytest.raises(ValueError, match="not a valid host name"):
        set_hostname.handle(make_ctx(target, {}, instance=info))
    assert not target.exists("/etc/hostname")


@pytest.mark.parametrize("brk", LINE_BREAKS[1:], ids=[repr(b) for b in LINE_BREAKS[1:]])
def test_key_comment_with_a_line_break_adds_no_key(target: TargetRoot, brk: str) -> None:
    smuggled = f"{KEY_A} comment{brk}{KEY_B} extra"
    cfg = {**NO_DEFAULT_USER, "disable_root": False, "ssh_genkeytypes": [],
           "ssh_authorized_keys": [smuggled, f"{KEY_B} good"]}
    with pytest.raises(ssh.SSHModuleError, match=r"ssh_authorized_keys\[0\]"):
        ssh.handle(make_ctx(target, cfg))
    records = _records(target, "/root/.ssh/authorized_keys")
    assert records == [f"{KEY_B} good"]
    assert not any(c in target.read_text("/root/.ssh/authorized_keys") for c in LINE_BREAKS[1:])


def test_disable_root_opts_with_a_newline(target: TargetRoot) -> None:
    (target.root / "home/debian").mkdir(parents=True)
    with open(target.root / "etc/passwd", "a") as passwd:
        passwd.write("debian:x:1000:1000::/home/debian:/bin/sh\n")
    cfg = {"system_info": {"default_user": {"name": "debian"}}, "ssh_genkeytypes": [],
           "ssh_authorized_keys": [KEY_A],
           "disable_root_opts": f'no-pty\n{KEY_B} ,command="echo $USER"'}
    with pytest.raises(ssh.SSHModuleError, match="disable_root_opts"):
        ssh.handle(make_ctx(target, cfg))
    assert not target.exists("/root/.ssh/authorized_keys")
    assert _records(target, "/home/debian/.ssh/authorized_keys") == [KEY_A]


def test_one_bad_user_does_not_stop_the_others(target: TargetRoot) -> None:
    cfg = {"users": [{"name": "escaper", "homedir": "/home/../../etc"},
                     {"name": "huge", "uid": 2**40},
                     {"name": "dave", "ssh_authorized_keys": [KEY_A]}]}
    with pytest.raises(users_groups.UsersGroupsError) as err:
        users_groups.handle(make_ctx(target, cfg))
    assert "users[0]" in str(err.value) and "users[1]" in str(err.value)
    names = [r.split(":")[0] for r in _records(target, "/etc/passwd")]
    assert "dave" in names and "escaper" not in names and "huge" not in names
    assert _records(target, "/home/dave/.ssh/authorized_keys") == [KEY_A]
