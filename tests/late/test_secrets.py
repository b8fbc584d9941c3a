"""A password and a private key in user-data must reach no world-readable file the
agent wrote and no log line (stderr/journal, bootseed.log)."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from testsupport.chroot import make_shell_root
from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import make_target

PASSWORD = "Pw-9f2c-never-leak-7781"
CHPASSWD_PASSWORD = "Chpw-ab12-never-leak"


def _private_key() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


def _world_readable_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if stat.S_IMODE(path.stat().st_mode) & stat.S_IROTH:
            found.append(path)
    return found


def test_secrets_stay_out_of_readable_files_and_logs(tmp_path: Path) -> None:
    root = make_shell_root(make_target(tmp_path / "root").root).root
    private, public = _private_key()
    body_lines = [line for line in private.splitlines() if not line.startswith("-----")]
    cfg = {
        "users": ["default", {"name": "alice", "plain_text_passwd": PASSWORD,
                              "lock_passwd": False, "ssh_authorized_keys": [public]}],
        "ssh_keys": {"ed25519_private": private, "ed25519_public": public},
        "chpasswd": {"list": f"alice:{CHPASSWD_PASSWORD}"},
        # A module failing with the secret in its command line, and a schema error
        # whose message quotes the password.
        "runcmd": [f"echo {PASSWORD} > /dev/null; exit 3"],
        "final_message": f"hello {PASSWORD}",
        "bootcmd": [["echo", PASSWORD, {"bad": PASSWORD}]],
    }
    plant_seed(root, "#cloud-config\n" + yaml.safe_dump(cfg))
    run = Agent(root).run()
    assert run.status.state == "error"  # runcmd and bootcmd failed on purpose

    secrets = [PASSWORD, CHPASSWD_PASSWORD, *body_lines]
    readable = _world_readable_files(root)
    assert root / "run/bootseed/status.json" in readable
    assert root / "run/bootseed/instance-data.json" in readable
    assert root / "run/bootseed/result.json" in readable
    for path in readable:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:12]}... in {path}"
    logs = run.log + (root / "var/log/bootseed.log").read_text()
    assert "alice" in logs  # the log does talk about the user
    for secret in secrets:
        assert secret not in logs
    # The secrets are where they belong, root-only.
    assert PASSWORD.encode() in (root / "var/lib/bootseed/instance/user-data.txt").read_bytes()
    host_key = root / "etc/ssh/ssh_host_ed25519_key"
    assert stat.S_IMODE(host_key.stat().st_mode) == 0o600
    # Generated host keys (rsa, ecdsa) are secrets too.
    for name in ("ssh_host_rsa_key", "ssh_host_ecdsa_key"):
        generated = root / "etc/ssh" / name
        if generated.exists():
            lines = [ln for ln in generated.read_text().splitlines() if "-----" not in ln]
            for line in lines[:3]:
                assert line not in logs
