from __future__ import annotations

import json
import logging
import stat
import subprocess
from pathlib import Path

import pytest
from bootseed.contract.problems import Level
from bootseed.late import sshd
from bootseed.late.modules import ssh, users_groups
from bootseed.late.modules.base import InstanceInfo, ModuleContext
from bootseed.late.modules.ssh import DROPIN, MARKER, SSHModuleError
from bootseed.late.sshkeys import fingerprint, generate_host_key, hex_fingerprint
from bootseed.late.target import TargetRoot

from testsupport.targetfs import Recorder, make_ctx, make_target

USER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh u@x"
)
META_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJi m@x"
)
DEFAULT_USER = {"system_info": {"default_user": {"name": "debian", "sudo": False}}}


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    t = make_target(tmp_path / "root")
    ssh_dir = t.path("/etc/ssh")
    ssh_dir.mkdir()
    (ssh_dir / "sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    (ssh_dir / "moduli").write_text("keep me\n")
    return t


def keygen(*args: str) -> str:
    proc = subprocess.run(["ssh-keygen", *args], capture_output=True, text=True, check=True)
    return proc.stdout


def host_files(target: TargetRoot) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(target.path("/etc/ssh").glob("ssh_host_*"))}


def test_generates_default_host_keys_ed25519_first(
    target: TargetRoot, caplog: pytest.LogCaptureFixture
) -> None:
    (target.path("/etc/ssh") / "ssh_host_dsa_key").write_text("old image key\n")
    (target.path("/etc/ssh") / "ssh_host_dsa_key.pub").write_text("old\n")
    rec = Recorder()
    caplog.set_level(logging.INFO)
    ssh.MODULE.handle(make_ctx(target, {}, "ssh", recorder=rec))
    made = [r.getMessage().split()[1] for r in caplog.records if "generated" in r.getMessage()]
    assert made == ["ed25519", "ecdsa", "rsa"]
    assert not target.path("/etc/ssh/ssh_host_dsa_key").exists()
    assert target.read_text("/etc/ssh/moduli") == "keep me\n"
    expected_bits = {"ed25519": 256, "ecdsa": 256, "rsa": 3072}
    for keytype, bits in expected_bits.items():
        priv = target.path(f"/etc/ssh/ssh_host_{keytype}_key")
        pub = target.path(f"/etc/ssh/ssh_host_{keytype}_key.pub")
        assert stat.S_IMODE(priv.stat().st_mode) == 0o600 and priv.stat().st_uid == 0
        assert stat.S_IMODE(pub.stat().st_mode) == 0o644
        assert priv.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert priv.read_text() in rec.secrets
        # OpenSSH itself reads the private key and derives the same public key...
        derived = keygen("-y", "-f", str(priv)).split()[:2]
        assert derived == pub.read_text().split()[:2]
        # ...and prints the same fingerprint line as ours.
        ours = fingerprint(pub.read_text())
        assert ours.bits == bits
        assert keygen("-l", "-f", str(pub)).strip() == ours.line()
        assert pub.read_text().split()[2] == "root@box"
    assert json.loads((target.root / "var/lib/bootseed/instances/i-test" / MARKER).read_text())
    assert not target.path(DROPIN).exists()


def test_rerun_keeps_this_instances_keys(target: TargetRoot) -> None:
    cfg = {"ssh_genkeytypes": ["ed25519"]}
    ssh.MODULE.handle(make_ctx(target, cfg, "ssh"))
    first = host_files(target)
    ssh.MODULE.handle(make_ctx(target, cfg, "ssh"))
    assert host_files(target) == first
    # A key removed by hand is noticed: the marker no longer matches, keys are remade.
    target.path("/etc/ssh/ssh_host_ed25519_key.pub").unlink()
    ssh.MODULE.handle(make_ctx(target, cfg, "ssh"))
    again = host_files(target)
    assert set(again) == set(first) and again != first


def test_no_deletekeys_keeps_existing_key(target: TargetRoot, tmp_path: Path) -> None:
    keygen("-q", "-t", "ed25519", "-N", "", "-C", "image", "-f", str(tmp_path / "k"))
    Path(target.path("/etc/ssh/ssh_host_ed25519_key")).write_bytes((tmp_path / "k").read_bytes())
    Path(target.path("/etc/ssh/ssh_host_ed25519_key.pub")).write_bytes(
        (tmp_path / "k.pub").read_bytes()
    )
    ssh.MODULE.handle(make_ctx(target, {"ssh_deletekeys": False}, "ssh"))
    assert (
        target.path("/etc/ssh/ssh_host_ed25519_key.pub").read_bytes()
        == (tmp_path / "k.pub").read_bytes()
    )
    assert target.path("/etc/ssh/ssh_host_rsa_key").exists()


def test_user_supplied_keys_and_certificate(target: TargetRoot, tmp_path: Path) -> None:
    keygen("-q", "-t", "ed25519", "-N", "", "-C", "given", "-f", str(tmp_path / "k"))
    keygen("-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", str(tmp_path / "r"))
    private = (tmp_path / "k").read_text()
    cert = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t host"
    cfg = {
        "ssh_keys": {
            "ed25519_private": private,
            "ed25519_public": (tmp_path / "k.pub").read_text(),
            "ed25519_certificate": cert,
            "rsa_private": (tmp_path / "r").read_text(),  # PEM, no public given
        },
    }
    rec = Recorder()
    ssh.MODULE.handle(make_ctx(target, cfg, "ssh", recorder=rec))
    assert target.read_text("/etc/ssh/ssh_host_ed25519_key") == private
    assert private in rec.secrets
    assert target.read_text("/etc/ssh/ssh_host_ed25519_key-cert.pub") == cert + "\n"
    rsa_pub = target.read_text("/etc/ssh/ssh_host_rsa_key.pub")
    assert rsa_pub.split()[:2] == (tmp_path / "r.pub").read_text().split()[:2]
    # Given keys replace generation: no ecdsa key is made.
    assert not target.path("/etc/ssh/ssh_host_ecdsa_key").exists()
    dropin = target.read_text(DROPIN)
    assert "PasswordAuthentication" not in dropin  # set_passwords' own drop-in
    assert "HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n" in dropin


def test_mismatched_and_bad_keys_are_named(target: TargetRoot, tmp_path: Path) -> None:
    other = generate_host_key("ed25519", "other")
    keygen("-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k"))
    cfg = {
        "ssh_keys": {
            "ed25519_private": (tmp_path / "k").read_text(),
            "ed25519_public": other.public_line,
            "rsa_private": "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n",
            "dsa_private": "x",
            "rsa_secret": "y",
        }
    }
    ctx = make_ctx(target, cfg, "ssh")
    with pytest.raises(SSHModuleError) as info:
        ssh.MODULE.handle(ctx)
    text = str(info.value)
    assert "ssh_keys.ed25519: ed25519_public does not match ed25519_private" in text
    assert "ssh_keys.rsa: not a usable unencrypted private key" in text
    assert "ssh_keys.rsa_secret: unknown key name" in text
    # DSA keys are accepted and skipped with a note: OpenSSH 9.2 cannot use them.
    assert "ssh_keys.dsa" not in text
    assert [(p.where, p.message, p.level) for p in ctx.problems] == [
        ("ssh_keys.dsa_private", "DSA host keys are not supported by this OpenSSH; skipped",
         Level.NOTE)
    ]
    assert not target.path("/etc/ssh/ssh_host_dsa_key").exists()


def test_bad_genkeytype_reported_others_made(target: TargetRoot) -> None:
    with pytest.raises(SSHModuleError, match="cannot generate host key type 'dsa'"):
        ssh.MODULE.handle(make_ctx(target, {"ssh_genkeytypes": ["dsa", "ed25519"]}, "ssh"))
    assert target.path("/etc/ssh/ssh_host_ed25519_key").exists()


def test_authorized_keys_for_default_user_and_root(target: TargetRoot) -> None:
    cfg = {**DEFAULT_USER, "ssh_authorized_keys": [USER_KEY], "ssh_genkeytypes": []}
    users_groups.MODULE.handle(make_ctx(target, cfg))
    instance = InstanceInfo("i-1", "box", public_keys=[META_KEY])
    for _ in range(2):  # idempotent: the second run adds no duplicates
        ssh.MODULE.handle(make_ctx(target, cfg, "ssh", instance=instance))
    user_keys = target.path("/home/debian/.ssh/authorized_keys")
    assert user_keys.read_text() == META_KEY + "\n" + USER_KEY + "\n"
    assert user_keys.stat().st_uid == 1000 and stat.S_IMODE(user_keys.stat().st_mode) == 0o600
    root_lines = target.read_text("/root/.ssh/authorized_keys").splitlines()
    assert len(root_lines) == 2
    for line, key in zip(root_lines, (META_KEY, USER_KEY), strict=True):
        assert line.endswith(" " + key)
        assert line.startswith("no-port-forwarding,no-agent-forwarding,no-X11-forwarding,")
        assert 'Please login as the user \\"debian\\" rather than the user \\"root\\".' in line
    # disable_root: false rewrites root's lines without the options, still no duplicates.
    ssh.MODULE.handle(make_ctx(target, {**cfg, "disable_root": False}, "ssh", instance=instance))
    assert target.read_text("/root/.ssh/authorized_keys") == META_KEY + "\n" + USER_KEY + "\n"


def test_allow_public_ssh_keys_false_skips_meta_data_keys(target: TargetRoot) -> None:
    cfg = {**DEFAULT_USER, "ssh_authorized_keys": [USER_KEY], "ssh_genkeytypes": [],
           "allow_public_ssh_keys": False}
    users_groups.MODULE.handle(make_ctx(target, cfg))
    instance = InstanceInfo("i-1", "box", public_keys=[META_KEY])
    ssh.MODULE.handle(make_ctx(target, cfg, "ssh", instance=instance))
    assert target.read_text("/home/debian/.ssh/authorized_keys") == USER_KEY + "\n"
    [root_line] = target.read_text("/root/.ssh/authorized_keys").splitlines()
    assert root_line.endswith(" " + USER_KEY)
    # Meta-data keys only, and they are not allowed: nothing is written for anyone.
    other = make_target(target.root.parent / "other")
    users_groups.MODULE.handle(make_ctx(other, DEFAULT_USER))
    ssh.MODULE.handle(make_ctx(other, {**DEFAULT_USER, "ssh_genkeytypes": [],
                                       "allow_public_ssh_keys": False}, "ssh", instance=instance))
    assert not other.path("/home/debian/.ssh/authorized_keys").exists()
    assert not other.path("/root/.ssh/authorized_keys").exists()


def test_disable_root_opts_custom_template(target: TargetRoot) -> None:
    cfg = {**DEFAULT_USER, "ssh_authorized_keys": [USER_KEY], "ssh_genkeytypes": [],
           "disable_root_opts": 'no-pty,command="echo use $USER not $DISABLE_USER"'}
    users_groups.MODULE.handle(make_ctx(target, cfg))
    ssh.MODULE.handle(make_ctx(target, cfg, "ssh"))
    assert target.read_text("/root/.ssh/authorized_keys") == (
        f'no-pty,command="echo use debian not root" {USER_KEY}\n')


def test_sshd_is_not_reloaded_in_a_root_target(target: TargetRoot) -> None:
    # This target has no /bin/sh: any attempt to run systemctl in it would be reported.
    assert not target.is_host
    assert sshd.reload_if_running(target, "ssh") is None


def test_include_detection(target: TargetRoot) -> None:
    assert sshd.includes_dropins(target) is True
    target.path("/etc/ssh/sshd_config").write_text("include sshd_config.d/*.conf\n")
    assert sshd.includes_dropins(target) is True
    target.path("/etc/ssh/sshd_config").write_text("# Include /etc/ssh/sshd_config.d/*.conf\n")
    assert sshd.includes_dropins(target) is False
    target.path("/etc/ssh/sshd_config").unlink()
    assert sshd.includes_dropins(target) is None


def test_hex_fingerprint_matches_ssh_keygen_md5(tmp_path: Path) -> None:
    keygen("-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", str(tmp_path / "k"))
    blob = (tmp_path / "k.pub").read_text().split()[1]
    out = keygen("-l", "-E", "md5", "-f", str(tmp_path / "k.pub"))
    assert f"MD5:{hex_fingerprint(blob, 'md5')} " in out


def _deferring_ctx(target: TargetRoot, cfg: dict[str, object],
                   deferred: list[tuple[str, object]]) -> ModuleContext:
    ctx = make_ctx(target, cfg, "ssh")
    ctx.background = lambda what, work: deferred.append((what, work))
    return ctx


def _marker(target: TargetRoot) -> dict[str, str]:
    return json.loads((target.root / "var/lib/bootseed/instances/i-test" / MARKER).read_text())


def test_rsa_is_made_beside_the_boot_after_the_quick_keys(target: TargetRoot) -> None:
    (target.path("/etc/ssh") / "ssh_host_rsa_key").write_text("old image key\n")
    deferred: list[tuple[str, object]] = []
    ssh.MODULE.handle(_deferring_ctx(target, {}, deferred))
    # What sshd finds when it starts: the quick keys, and no RSA key (not the image's
    # old one either), so it never advertises a key it does not have.
    assert sorted(host_files(target)) == [
        "ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub",
        "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    assert sorted(_marker(target)) == ["ecdsa", "ed25519"]
    [(what, work)] = deferred
    assert what == "rsa host key"
    assert callable(work) and work() == []  # a --root target: no sshd to restart
    pub = target.read_text("/etc/ssh/ssh_host_rsa_key.pub")
    assert fingerprint(pub).bits == 3072
    assert _marker(target)["rsa"] == fingerprint(pub).sha256
    assert sorted(_marker(target)) == ["ecdsa", "ed25519", "rsa"]


def test_a_run_stopped_before_rsa_was_written_makes_it_and_keeps_the_rest(
        target: TargetRoot) -> None:
    deferred: list[tuple[str, object]] = []
    ssh.MODULE.handle(_deferring_ctx(target, {}, deferred))
    before = host_files(target)
    # The run was killed before its RSA work ran; the module is due again.
    ssh.MODULE.handle(make_ctx(target, {}, "ssh"))
    after = host_files(target)
    assert {k: v for k, v in after.items() if "rsa" not in k} == before
    assert "ssh_host_rsa_key" in after
    assert sorted(_marker(target)) == ["ecdsa", "ed25519", "rsa"]


def test_rsa_alone_is_made_before_sshd_starts(target: TargetRoot) -> None:
    deferred: list[tuple[str, object]] = []
    ssh.MODULE.handle(_deferring_ctx(target, {"ssh_genkeytypes": ["rsa"]}, deferred))
    # sshd must have a key to start with: nothing is left for later.
    assert deferred == []
    assert sorted(host_files(target)) == ["ssh_host_rsa_key", "ssh_host_rsa_key.pub"]
