"""``set_passwords``: every form of ``chpasswd``, ``password`` (and the OVF password),
``ssh_pwauth``, and no password anywhere but /etc/shadow and the console."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from bootseed.contract.problems import Level
from bootseed.late.accounts import AccountsDB, days_since_epoch
from bootseed.late.modules import set_passwords, users_groups
from bootseed.late.modules.base import InstanceInfo
from bootseed.late.modules.set_passwords import HASH_RE, PWAUTH_DROPIN, random_password
from bootseed.late.passwdhash import matches, sha512_crypt
from bootseed.late.registry import load_registry
from bootseed.late.schema import validate
from bootseed.late.target import TargetRoot

from testsupport.runenv import Agent, module, plant_seed
from testsupport.targetfs import Recorder, make_ctx, make_target

SHA512 = sha512_crypt("given-elsewhere", "saltsaltsalt")
YESCRYPT = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
SHA256 = "$5$rounds=5000$abc$ORxQm7GK6rvkj0gXxLyHAbRd4E1E5J/NLdGf6V8HDm3"
DEFAULT_USER = {"system_info": {"default_user": {"name": "debian", "sudo": False}}}


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    t = make_target(tmp_path / "root")
    db = AccountsDB.load(t)
    for uid, name in enumerate(("alice", "bob", "carl"), start=1000):
        db.add_group(name, gid=uid)
        db.add_user(name, uid, uid, "", f"/home/{name}", "/bin/bash")
    db.save()
    ssh_dir = t.path("/etc/ssh")
    ssh_dir.mkdir()
    (ssh_dir / "sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    return t


def shadow(target: TargetRoot, name: str) -> list[str]:
    [line] = [ln for ln in target.read_text("/etc/shadow").splitlines()
              if ln.split(":")[0] == name]
    return line.split(":")


def apply(target: TargetRoot, cfg: dict, rec: Recorder | None = None,
          instance: InstanceInfo | None = None) -> list[tuple[str, str, str]]:
    ctx = make_ctx(target, cfg, "set_passwords", instance=instance, recorder=rec)
    set_passwords.MODULE.handle(ctx)
    return [(p.where, p.message, str(p.level)) for p in ctx.problems]


def test_list_as_multiline_string_plain_and_hashed(target: TargetRoot) -> None:
    rec = Recorder()
    cfg = {"chpasswd": {"list": f"alice:Plain-Pass-1\nbob:{SHA512}\n\ncarl:{YESCRYPT}\n"}}
    assert apply(target, cfg, rec) == []
    alice = shadow(target, "alice")
    assert alice[1].startswith("$6$") and matches("Plain-Pass-1", alice[1])
    assert shadow(target, "bob")[1] == SHA512
    assert shadow(target, "carl")[1] == YESCRYPT
    # expire defaults to true: a last change of day 0 forces a change at first login.
    assert [shadow(target, n)[2] for n in ("alice", "bob", "carl")] == ["0", "0", "0"]
    if shutil.which("chage"):  # shadow-utils reads it the same way
        out = subprocess.run(["chage", "-R", str(target.root), "-l", "alice"],
                             capture_output=True, text=True, check=True).stdout
        assert out.splitlines()[0].endswith(": password must be changed")
    assert "Plain-Pass-1" in rec.secrets and alice[1] in rec.secrets
    assert rec.console == []
    # Other fields and accounts are kept.
    assert shadow(target, "root") == ["root", "*", "19500", "0", "99999", "7", "", "", ""]
    assert stat.S_IMODE(target.path("/etc/shadow").stat().st_mode) == 0o640


def test_list_as_list_without_expire(target: TargetRoot) -> None:
    cfg = {"chpasswd": {"expire": False, "list": ["alice:Plain-Pass-2", f"bob:{SHA256}"]}}
    assert apply(target, cfg) == []
    assert matches("Plain-Pass-2", shadow(target, "alice")[1])
    assert shadow(target, "bob")[1] == SHA256
    assert shadow(target, "alice")[2] == str(days_since_epoch())


def test_users_form_text_hash_random(target: TargetRoot) -> None:
    rec = Recorder()
    cfg = {"chpasswd": {"users": [
        {"name": "alice", "password": "Text-Pass-3"},
        {"name": "bob", "password": YESCRYPT, "type": "hash"},
        {"name": "carl", "type": "RANDOM"},
    ]}}
    assert apply(target, cfg, rec) == []
    assert matches("Text-Pass-3", shadow(target, "alice")[1])
    assert shadow(target, "bob")[1] == YESCRYPT
    [shown] = rec.console
    assert shown.startswith("bootseed: set the following 'random' passwords\n")
    [line] = shown.splitlines()[1:]
    user, _, password = line.partition(":")
    assert user == "carl" and len(password) == 20 and password.isalnum()
    assert matches(password, shadow(target, "carl")[1])
    assert password in rec.secrets


def test_random_words_in_the_list_form(target: TargetRoot) -> None:
    rec = Recorder()
    assert apply(target, {"chpasswd": {"list": "alice:R\nbob:RANDOM"}}, rec) == []
    [shown] = rec.console
    pairs = dict(line.split(":", 1) for line in shown.splitlines()[1:])
    assert set(pairs) == {"alice", "bob"} and pairs["alice"] != pairs["bob"]
    for name, password in pairs.items():
        assert matches(password, shadow(target, name)[1])


def test_missing_user_named_rest_applied(target: TargetRoot) -> None:
    problems = apply(target, {"chpasswd": {"list": "ghost:Secret-Pass-4\nalice:Secret-Pass-5"}})
    assert problems == [("chpasswd.list[0]", "user 'ghost' does not exist in the target",
                         "error")]
    assert matches("Secret-Pass-5", shadow(target, "alice")[1])
    assert "ghost" not in target.read_text("/etc/shadow")


def test_bad_items_are_named_without_their_values(target: TargetRoot) -> None:
    cfg = {"chpasswd": {
        "list": ["no-colon-Secret-Pass-6", "alice:Good-Pass-7"],
        "users": [
            {"name": "bob", "password": "Not-A-Hash-8", "type": "hash"},
            {"name": "carl", "type": "sha1", "password": "Odd-Type-9"},
            {"password": "Nameless-10"},
            {"name": "carl"},
        ],
    }}
    problems = apply(target, cfg)
    assert [(w, lvl) for w, _m, lvl in problems] == [
        ("chpasswd.list[0]", "error"), ("chpasswd.users[0]", "error"),
        ("chpasswd.users[1]", "error"), ("chpasswd.users[2]", "error"),
        ("chpasswd.users[3]", "error")]
    text = repr(problems)
    for secret in ("Secret-Pass-6", "Not-A-Hash-8", "Odd-Type-9", "Nameless-10"):
        assert secret not in text
    assert "not a crypt hash" in text and "no password given" in text
    assert matches("Good-Pass-7", shadow(target, "alice")[1])
    assert shadow(target, "bob")[1] == "!"  # a non-hash is never written as a hash


def test_password_key_sets_the_default_users_password(target: TargetRoot) -> None:
    users_groups.MODULE.handle(make_ctx(target, DEFAULT_USER))
    assert shadow(target, "debian")[1] == "!"  # locked by users_groups
    assert apply(target, {**DEFAULT_USER, "password": "Default-Pass-11"}) == []
    entry = shadow(target, "debian")
    assert matches("Default-Pass-11", entry[1]) and entry[2] == "0"
    # chpasswd naming accounts itself wins over password, as in cloud-init.
    cfg = {**DEFAULT_USER, "password": "Ignored-12", "chpasswd": {"list": "alice:Alice-13"}}
    assert apply(target, cfg) == []
    assert matches("Default-Pass-11", shadow(target, "debian")[1])
    # password: RANDOM goes to the console like any random password.
    rec = Recorder()
    assert apply(target, {**DEFAULT_USER, "password": "RANDOM"}, rec) == []
    [shown] = rec.console
    assert shown.splitlines()[1].startswith("debian:")


def test_password_without_default_user_is_a_warning(target: TargetRoot) -> None:
    cfg = {"system_info": {"default_user": None}, "password": "Nobody-14"}
    assert apply(target, cfg) == [("password", "no default user to set it for", "warning")]


def test_ovf_password_is_the_default_users_secret(target: TargetRoot) -> None:
    users_groups.MODULE.handle(make_ctx(target, DEFAULT_USER))
    info = InstanceInfo("iid-ovf", "box", metadata={"sensitive": {"password": "Ovf-Pass-15"}},
                        source="ovf")
    rec = Recorder()
    assert apply(target, DEFAULT_USER, rec, instance=info) == []
    assert matches("Ovf-Pass-15", shadow(target, "debian")[1])
    assert "Ovf-Pass-15" in rec.secrets
    # The user-data password takes precedence over the OVF property.
    assert apply(target, {**DEFAULT_USER, "password": "Userdata-16"}, instance=info) == []
    assert matches("Userdata-16", shadow(target, "debian")[1])


def test_ssh_pwauth_values(target: TargetRoot) -> None:
    dropin = target.path(PWAUTH_DROPIN)
    for value, word in ((True, "yes"), (False, "no"), ("yes", "yes"), ("no", "no")):
        assert apply(target, {"ssh_pwauth": value}) == []
        assert dropin.read_text().splitlines()[1:] == [f"PasswordAuthentication {word}"]
        assert stat.S_IMODE(dropin.stat().st_mode) == 0o644
    assert apply(target, {"ssh_pwauth": "unchanged"}) == []
    assert not dropin.exists()
    apply(target, {"ssh_pwauth": True})
    assert apply(target, {}) == []  # not asked for: bootseed's drop-in is not left behind
    assert not dropin.exists()
    problems = apply(target, {"ssh_pwauth": "maybe"})
    assert problems == [("ssh_pwauth", "'maybe' is not true, false or 'unchanged'; "
                         "sshd left as it is", "error")]


def test_ssh_pwauth_without_include_is_reported(target: TargetRoot) -> None:
    target.path("/etc/ssh/sshd_config").write_text("PasswordAuthentication no\n")
    problems = apply(target, {"ssh_pwauth": True})
    assert problems == [("ssh_pwauth", "/etc/ssh/sshd_config does not include "
                         "/etc/ssh/sshd_config.d/*.conf; "
                         f"{PWAUTH_DROPIN} has no effect until it does", "warning")]
    assert target.path(PWAUTH_DROPIN).exists()


def test_hash_shapes_and_random_passwords() -> None:
    for good in (SHA512, YESCRYPT, SHA256, "$1$abc$def", "$2b$12$abcdefghijklmnopqrstuv"):
        assert HASH_RE.match(good), good
    for bad in ("$6$", "$6$salt", "plain", "$9$a$b", "$6$a$b:c", "!$6$a$b"):
        assert not HASH_RE.match(bad), bad
    assert len({random_password() for _ in range(50)}) == 50


def test_schema_accepts_every_form_and_names_bad_ones() -> None:
    good = yaml.safe_load(f"""
        password: pw
        ssh_pwauth: unchanged
        chpasswd:
          expire: false
          list: |
            alice:pw
            bob:RANDOM
          users:
            - {{name: carl, password: "{YESCRYPT}", type: hash}}
            - {{name: dora, type: RANDOM}}
            - {{name: eve, password: pw}}
        ssh_keys: {{dsa_private: x, dsa_public: y}}
        allow_public_ssh_keys: false
        """)
    registry = load_registry()
    assert validate(good, registry) == []
    assert validate({"chpasswd": {"list": ["alice:pw"]}, "ssh_pwauth": True}, registry) == []
    bad = {"chpasswd": {"users": [{"name": "a", "type": "md5"}], "expire": "yes"},
           "ssh_pwauth": "maybe", "password": 5}
    where = sorted(p.where for p in validate(bad, registry) if p.level == Level.ERROR)
    assert where == ["chpasswd.expire", "chpasswd.users[0].type", "password", "ssh_pwauth"]


def _world_readable_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_symlink() and p.is_file()
            and stat.S_IMODE(p.stat().st_mode) & stat.S_IROTH]


def test_agent_run_keeps_passwords_out_of_status_log_and_readable_files(tmp_path: Path) -> None:
    root = make_target(tmp_path / "root").root
    planted = ["Planted-Pw-4f1c-17", "Planted-Text-9b2e-18", "Ovf-Planted-7d3a-19"]
    cfg = {
        "users": ["default", {"name": "alice"}, {"name": "bob"}],
        "password": planted[0],
        "chpasswd": {"expire": True, "users": [
            {"name": "alice", "password": planted[1]},
            {"name": "bob", "type": "RANDOM"},
            {"name": "ghost", "password": planted[1]},
        ]},
        "ssh_genkeytypes": ["ed25519"],
    }
    plant_seed(root, "#cloud-config\n" + yaml.safe_dump(cfg), source="ovf",
               metadata={"sensitive": {"password": planted[2]}})
    run = Agent(root).run()
    assert module(run, "set_passwords").status == "ok"
    assert [p.message for p in run.status.problems
            if p.where == "set_passwords: chpasswd.users[2]"] == [
        "user 'ghost' does not exist in the target"]

    random_lines = [line for text in run.console for line in text.splitlines()
                    if line.startswith("bob:")]
    assert len(random_lines) == 1
    random_pw = random_lines[0].partition(":")[2]
    assert matches(random_pw, shadow(TargetRoot(root), "bob")[1])
    assert matches(planted[1], shadow(TargetRoot(root), "alice")[1])
    console = "".join(run.console)
    assert console.count(random_pw) == 1

    secrets = [*planted, random_pw]
    logs = run.log + (root / "var/log/bootseed.log").read_text()
    readable = _world_readable_files(root)
    assert root / "run/bootseed/status.json" in readable
    for path in readable:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:8]}... in {path}"
    for secret in secrets:
        assert secret not in logs
    assert "set the password of alice, bob (expired" in logs
    # The OVF password was for the default user, and chpasswd.users took precedence.
    assert shadow(TargetRoot(root), "debian")[1] == "!"


def test_agent_run_with_the_ovf_password_only(tmp_path: Path) -> None:
    root = make_target(tmp_path / "root").root
    planted = "Ovf-Only-Planted-2c8e-20"
    plant_seed(root, "#cloud-config\nssh_genkeytypes: []\n", source="ovf",
               metadata={"sensitive": {"password": planted}})
    run = Agent(root).run()
    assert module(run, "set_passwords").status == "ok"
    entry = shadow(TargetRoot(root), "debian")
    assert matches(planted, entry[1]) and entry[2] == "0"
    assert run.console == [] or all(planted not in text for text in run.console)
    logs = run.log + (root / "var/log/bootseed.log").read_text()
    assert "set the password of debian" in logs and planted not in logs
    for path in _world_readable_files(root):
        assert planted.encode() not in path.read_bytes(), path
