from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from bootseed.late.modules import keys_to_console, ssh, ssh_authkey_fingerprints, users_groups
from bootseed.late.modules.base import Stage
from bootseed.late.modules.keys_to_console import FP_BEGIN, FP_END, KEYS_BEGIN, KEYS_END
from bootseed.late.target import TargetRoot

from testsupport.targetfs import Recorder, make_ctx, make_target

USER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh u@x"
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> TargetRoot:
    t = make_target(tmp_path_factory.mktemp("k2c") / "root")
    ssh.MODULE.handle(make_ctx(t, {}, "ssh"))
    return t


def console_of(target: TargetRoot, cfg: dict, module=keys_to_console) -> list[str]:
    rec = Recorder()
    module.MODULE.handle(make_ctx(target, cfg, module.MODULE.name, recorder=rec))
    return "\n".join(rec.console).splitlines()


def block(lines: list[str], begin: str, end: str) -> list[str]:
    return lines[lines.index(begin) + 1 : lines.index(end)]


def test_fingerprints_and_keys_between_markers(
    target: TargetRoot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lines = console_of(target, {})
    assert keys_to_console.MODULE.stage is Stage.FINAL
    pubs = sorted(target.path("/etc/ssh").glob("ssh_host_*key.pub"))
    expected_fp = [
        subprocess.run(["ssh-keygen", "-l", "-f", str(p)], capture_output=True, text=True,
                       check=True).stdout.strip()
        for p in pubs
    ]  # fmt: skip
    assert block(lines, FP_BEGIN, FP_END) == expected_fp
    assert block(lines, KEYS_BEGIN, KEYS_END) == [p.read_text().strip() for p in pubs]
    # Console only: neither the keys nor their fingerprints reach the log.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for p in pubs:
        assert p.read_text().split()[1] not in logged
    for fp in expected_fp:
        assert fp.split()[1] not in logged


def test_blacklists(target: TargetRoot) -> None:
    lines = console_of(
        target,
        {
            "ssh_fp_console_blacklist": ["ecdsa-sha2-nistp256", "rsa"],
            "ssh_key_console_blacklist": ["ssh-ed25519"],
        },
    )
    fps = block(lines, FP_BEGIN, FP_END)
    assert len(fps) == 1 and fps[0].endswith("(ED25519)")
    keys = block(lines, KEYS_BEGIN, KEYS_END)
    assert [k.split()[0] for k in keys] == ["ecdsa-sha2-nistp256", "ssh-rsa"]


def test_no_fingerprints_and_no_key_block(target: TargetRoot) -> None:
    assert console_of(target, {"no_ssh_fingerprints": True}) == []
    lines = console_of(target, {"ssh": {"emit_keys_to_console": False}})
    assert FP_BEGIN in lines and KEYS_BEGIN not in lines


def test_authkey_fingerprints_table(tmp_path: Path) -> None:
    t = make_target(tmp_path / "root")
    cfg = {
        "users": [{"name": "ann", "ssh_authorized_keys": [f'from="10.0.0.1" {USER_KEY}']},
                  {"name": "ben"}],
    }  # fmt: skip
    users_groups.MODULE.handle(make_ctx(t, cfg))
    lines = console_of(t, cfg, ssh_authkey_fingerprints)
    assert lines[0] == "Authorized keys from /home/ann/.ssh/authorized_keys for user ann"
    row = next(line for line in lines if line.startswith("| ssh-ed25519"))
    import base64
    import hashlib

    digest = hashlib.sha256(base64.b64decode(USER_KEY.split()[1])).hexdigest()
    colon = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert f"| {colon} |" in row and '| from="10.0.0.1" |' in row and "| u@x" in row
    assert lines[-1] == "no authorized SSH keys fingerprints found for user ben."
    assert console_of(t, {**cfg, "no_ssh_fingerprints": True}, ssh_authkey_fingerprints) == []
    with pytest.raises(ValueError, match="authkey_hash"):
        console_of(t, {**cfg, "authkey_hash": "nope"}, ssh_authkey_fingerprints)
