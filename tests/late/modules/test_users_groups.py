from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from bootseed.late.accounts import AccountsDB, IdRanges, days_since_epoch
from bootseed.late.modules import users_groups
from bootseed.late.modules.users_groups import SUDOERS_DROPIN, UsersGroupsError
from bootseed.late.passwdhash import sha512_crypt
from bootseed.late.target import TargetRoot

from testsupport.targetfs import Recorder, make_ctx, make_target, passwd_lines, snapshot

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh a@x"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi b@x"


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    return make_target(tmp_path / "root")


def run(target: TargetRoot, cfg: dict, recorder: Recorder | None = None) -> None:
    users_groups.MODULE.handle(make_ctx(target, cfg, "users_groups", recorder=recorder))


def test_default_user_from_system_info(target: TargetRoot) -> None:
    cfg = {
        "system_info": {
            "default_user": {
                "name": "debian",
                "gecos": "Debian",
                "groups": ["adm", "sudo", "netdev"],
                "sudo": ["ALL=(ALL) NOPASSWD:ALL"],
                "shell": "/bin/bash",
                "lock_passwd": True,
            }
        },
        "users": ["default"],
    }
    run(target, cfg)
    [entry] = passwd_lines(target, "debian")
    assert entry == ["debian", "x", "1000", "1000", "Debian", "/home/debian", "/bin/bash"]
    [group] = passwd_lines(target, "debian", "/etc/group")
    assert group[2] == "1000"
    for grp in ("adm", "sudo", "netdev"):
        [line] = passwd_lines(target, grp, "/etc/group")
        assert line[3].split(",") == ["debian"]
        [gsh] = passwd_lines(target, grp, "/etc/gshadow")
        assert "debian" in gsh[3].split(",")
    [shadow] = passwd_lines(target, "debian", "/etc/shadow")
    assert shadow[1] == "!"
    assert shadow[2] == str(days_since_epoch())
    # Account files keep their mode and owner.
    st = target.path("/etc/shadow").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 42)
    home = target.path("/home/debian")
    assert stat.S_IMODE(home.stat().st_mode) == 0o755
    assert (home.stat().st_uid, home.stat().st_gid) == (1000, 1000)
    assert (home / ".bashrc").read_text() == "# skel bashrc\n"
    assert (home / ".config" / "app.conf").stat().st_uid == 1000
    sudoers = target.path(SUDOERS_DROPIN)
    assert stat.S_IMODE(sudoers.stat().st_mode) == 0o440
    assert "debian ALL=(ALL) NOPASSWD:ALL\n" in sudoers.read_text()


def test_users_absent_means_default_user(target: TargetRoot) -> None:
    run(target, {})
    assert passwd_lines(target, "debian")


def test_full_user_entry_and_idempotence(target: TargetRoot) -> None:
    cfg = {
        "groups": ["admins", {"devs": ["root"]}],
        "users": [
            "default",
            {
                "name": "alice",
                "gecos": "Alice A",
                "homedir": "/srv/alice",
                "primary_group": "devs",
                "groups": "admins, sudo",
                "shell": "/bin/zsh",
                "sudo": "ALL=(ALL) ALL",
                "lock_passwd": False,
                "plain_text_passwd": "s3cret pass",
                "ssh_authorized_keys": [KEY_A, KEY_B],
                "uid": 2001,
                "expiredate": "2031-01-02",
            },
            {"name": "svc", "system": True, "shell": "/usr/sbin/nologin"},
            {"name": "nohome", "no_create_home": True, "hashed_passwd": "$6$abc$def"},
        ],
    }
    rec = Recorder()
    run(target, cfg, rec)
    first = snapshot(target.root)

    [alice] = passwd_lines(target, "alice")
    devs_gid = passwd_lines(target, "devs", "/etc/group")[0][2]
    assert alice == ["alice", "x", "2001", devs_gid, "Alice A", "/srv/alice", "/bin/zsh"]
    [shadow] = passwd_lines(target, "alice", "/etc/shadow")
    assert shadow[1].startswith("$6$") and not shadow[1].startswith("!")
    salt = shadow[1].split("$")[2]
    assert sha512_crypt("s3cret pass", salt) == shadow[1]
    assert shadow[7] == str(
        (__import__("datetime").date(2031, 1, 2) - __import__("datetime").date(1970, 1, 1)).days
    )
    assert "s3cret pass" in rec.secrets
    assert passwd_lines(target, "devs", "/etc/group")[0][3] == "root"
    assert passwd_lines(target, "admins", "/etc/group")[0][3] == "alice"
    keys = target.path("/srv/alice/.ssh/authorized_keys")
    assert keys.read_text() == KEY_A + "\n" + KEY_B + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert keys.stat().st_uid == 2001
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700

    [svc] = passwd_lines(target, "svc")
    assert 100 <= int(svc[2]) <= 999 and not target.path("/home/svc").exists()
    assert passwd_lines(target, "nohome")
    assert not target.path("/home/nohome").exists()
    assert passwd_lines(target, "nohome", "/etc/shadow")[0][1] == "!$6$abc$def"

    sudo_text = target.path(SUDOERS_DROPIN).read_text()
    assert "alice ALL=(ALL) ALL\n" in sudo_text
    assert "debian ALL=(ALL) NOPASSWD:ALL\n" in sudo_text

    # A second run (e.g. the runner re-running after a crash) changes nothing.
    run(target, cfg)
    second = snapshot(target.root)
    assert first == second
    for name in ("alice", "svc", "debian"):
        assert len(passwd_lines(target, name)) == 1
        assert len(passwd_lines(target, name, "/etc/shadow")) == 1


def test_target_files_are_readable_by_real_tools(target: TargetRoot) -> None:
    run(target, {"users": [{"name": "bob", "groups": ["sudo"]}, {"name": "sys1", "system": True}]})
    # pwck/grpck -R read the target's own files (and resolve names there) read-only.
    # Homes/shells of the stock entries are absent in this minimal tree; any other
    # finding (bad field, missing shadow line, unknown member) is a defect.
    for tool in ("pwck", "grpck"):
        proc = subprocess.run([tool, "-r", "-R", str(target.root)], capture_output=True, text=True)
        findings = [
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if line and "does not exist" not in line and "no changes" not in line
        ]
        assert findings == [], proc.stdout + proc.stderr
    # The check can fail: a member that is not a user is reported.
    with open(target.path("/etc/group"), "a") as fh:
        fh.write("ghosts:x:3000:nobody-here\n")
    proc = subprocess.run(["grpck", "-r", "-R", str(target.root)], capture_output=True, text=True)
    assert "no user nobody-here" in proc.stdout + proc.stderr


def test_bad_entries_are_reported_and_the_rest_applies(target: TargetRoot) -> None:
    cfg = {
        "users": [
            {"name": "bad:name"},
            {"gecos": "no name"},
            {"name": "carol", "uid": 0},
            {"name": "dave", "groups": ["missing"], "create_groups": False},
            {"name": "erin", "ssh_authorized_keys": ["not a key", KEY_A]},
        ]
    }
    with pytest.raises(UsersGroupsError) as info:
        run(target, cfg)
    text = str(info.value)
    assert "users[0] (bad:name)" in text
    assert "users[1]: a user entry needs a 'name'" in text
    assert "users[2] (carol): uid 0 is already used" in text
    assert "users[3] (dave)" in text and "'missing'" in text
    assert "users[4] (erin)" in text and "not an SSH public key" in text
    assert not passwd_lines(target, "carol")
    # erin's good key is still written.
    erin = passwd_lines(target, "erin")[0]
    assert target.path(f"{erin[5]}/.ssh/authorized_keys").read_text() == KEY_A + "\n"


def test_existing_user_gets_groups_keys_and_password(target: TargetRoot) -> None:
    hashed = sha512_crypt("pw", "saltsalt")
    run(
        target,
        {
            "users": [
                {
                    "name": "root",
                    "hashed_passwd": hashed,
                    "lock_passwd": False,
                    "groups": ["adm"],
                    "ssh_authorized_keys": [KEY_A],
                }
            ]
        },
    )
    assert passwd_lines(target, "root", "/etc/shadow")[0][1] == hashed
    assert passwd_lines(target, "adm", "/etc/group")[0][3] == "root"
    assert target.path("/root/.ssh/authorized_keys").read_text() == KEY_A + "\n"
    assert len(passwd_lines(target, "root")) == 1


def test_sudo_false_removes_only_that_users_block(target: TargetRoot) -> None:
    run(
        target,
        {
            "users": [
                {"name": "u1", "sudo": "ALL=(ALL) ALL"},
                {"name": "u2", "sudo": ["ALL=(ALL) NOPASSWD: /bin/true"]},
            ]
        },
    )
    run(target, {"users": [{"name": "u1", "sudo": False}]})
    text = target.path(SUDOERS_DROPIN).read_text()
    assert "u1 " not in text
    assert "u2 ALL=(ALL) NOPASSWD: /bin/true\n" in text
    if Path("/usr/sbin/visudo").exists():
        proc = subprocess.run(
            ["/usr/sbin/visudo", "-c", "-f", str(target.path(SUDOERS_DROPIN))],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_host_accounts_untouched(target: TargetRoot) -> None:
    before = {p: Path(p).read_bytes() for p in ("/etc/passwd", "/etc/group", "/etc/shadow")}
    run(target, {"users": [{"name": "zed-host-check"}]})
    assert {p: Path(p).read_bytes() for p in before} == before


def test_crash_leftover_group_and_shadow_are_adopted(target: TargetRoot) -> None:
    # Simulate a power cut after gshadow/group/shadow were written but before passwd.
    with open(target.path("/etc/group"), "a") as fh:
        fh.write("frank:x:1000:\n")
    with open(target.path("/etc/shadow"), "a") as fh:
        fh.write("frank:!:19000:0:99999:7:::\n")
    run(target, {"users": [{"name": "frank"}]})
    assert passwd_lines(target, "frank")[0][2:4] == ["1000", "1000"]
    assert len(passwd_lines(target, "frank", "/etc/group")) == 1
    assert len(passwd_lines(target, "frank", "/etc/shadow")) == 1


def test_login_defs_and_allocation() -> None:
    ranges = IdRanges.from_login_defs("UID_MIN 5000\nHOME_MODE 0700\n# UID_MAX 1\n")
    assert ranges.uid_min == 5000 and ranges.home_mode == 0o700 and ranges.uid_max == 60000


def test_missing_passwd_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    with pytest.raises(ValueError, match="no passwd file"):
        AccountsDB.load(TargetRoot(tmp_path))


def test_new_shadow_file_gets_restrictive_mode(tmp_path: Path) -> None:
    target = make_target(tmp_path / "r")
    os.unlink(target.path("/etc/shadow"))
    os.unlink(target.path("/etc/gshadow"))
    run(target, {"users": [{"name": "gina"}]})
    st = target.path("/etc/shadow").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, 42)
    assert not target.path("/etc/gshadow").exists()


def test_sha512_crypt_published_vectors_and_openssl() -> None:
    from bootseed.late.passwdhash import matches

    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOf"
        "aS35inz1"
    )
    assert sha512_crypt("Hello world!", "saltstringsaltstring", rounds=10000) == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8v"
        "OuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
    )
    for password in ("x", "pässwörd with spaces", "p" * 130):
        ours = sha512_crypt(password, "Ab3./xyz")
        theirs = subprocess.run(
            ["openssl", "passwd", "-6", "-salt", "Ab3./xyz", password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert ours == theirs
        assert matches(password, "!" + ours)
        assert not matches(password + "!", ours)
