"""The ``bootseed`` verbs' cloud-init-parity options: status --format, analyze
show/blame/dump, schema --annotate, query --all/--list-keys/--format, clean
--machine-id/--reboot and collect-logs, each with its exit codes."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml
from bootseed.late.cli import main

from testsupport.chroot import make_shell_root
from testsupport.runenv import run_cli_first_boot
from testsupport.targetfs import make_target

PASSWORD = "planted-Secret-9876"
USER_DATA = f"""#cloud-config
password: {PASSWORD}
chpasswd: {{expire: false}}
runcmd:
  - echo run >> /runcmd-count
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_shell_root(make_target(tmp_path / "root").root).root


def _boot(root: Path, user_data: str = USER_DATA) -> None:
    run_cli_first_boot(main, root, user_data)


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_status_formats(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--root", str(root), "--format", "yaml"]) == 2  # not started
    assert yaml.safe_load(_out(capsys))["state"] == "not started"
    _boot(root)
    capsys.readouterr()
    assert main(["status", "--root", str(root), "--format", "json"]) == 0
    as_json = json.loads(_out(capsys))
    assert main(["status", "--root", str(root), "--format", "yaml"]) == 0
    assert yaml.safe_load(_out(capsys)) == as_json
    assert as_json["state"] == "done" and as_json["instance_id"] == "i-0001"
    assert main(["status", "--root", str(root), "--format", "tabular"]) == 0
    assert _out(capsys) == "status: done\n"


def test_analyze_actions(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "dump", "--root", str(root)]) == 1  # nothing ran
    _boot(root)
    capsys.readouterr()
    assert main(["analyze", "--root", str(root)]) == 0
    shown = _out(capsys)
    assert shown.startswith("stages (total")
    assert main(["analyze", "show", "--root", str(root)]) == 0
    assert _out(capsys) == shown
    assert main(["analyze", "blame", "--root", str(root)]) == 0
    assert _out(capsys) == shown
    assert main(["analyze", "dump", "--root", str(root)]) == 0
    dumped = json.loads(_out(capsys))
    assert main(["analyze", "--json", "--root", str(root)]) == 0
    assert json.loads(_out(capsys)) == dumped and len(dumped["stages"]) == 4


def test_schema_annotate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("#cloud-config\nruncmd: 5\nusers:\n  - name: a\n"
                      "    ssh-authorized-keys: [x]\nno_such: 1\n")
    assert main(["schema", "--config-file", str(config), "--annotate"]) == 1
    out = _out(capsys)
    assert out.splitlines()[:6] == [
        "#cloud-config", "runcmd: 5\t\t# E1", "users:", "  - name: a",
        "    ssh-authorized-keys: [x]\t\t# W2", "no_such: 1\t\t# W1"]
    assert "# Errors: -------------\n# E1: runcmd: must be of type array" in out
    assert "# W1: no_such: unknown key 'no_such'" in out
    assert "# W2: users[0].ssh-authorized-keys: unknown key" in out
    good = tmp_path / "good.yaml"
    good.write_text("#cloud-config\nruncmd: [ls]\n")
    assert main(["schema", "-c", str(good), "--annotate"]) == 0
    assert _out(capsys) == "#cloud-config\nruncmd: [ls]\nvalid\n"


def test_query_all_list_keys_format(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--root", str(root), "--all"]) == 1  # nothing ran
    _boot(root)
    capsys.readouterr()
    assert main(["query", "--root", str(root), "--all"]) == 0
    everything = json.loads(_out(capsys))
    assert main(["query", "--root", str(root), "--list-keys"]) == 0
    assert _out(capsys).split() == sorted(everything)
    assert main(["query", "--root", str(root), "--list-keys", "v1"]) == 0
    assert "instance_id" in _out(capsys).split()
    assert main(["query", "--root", str(root), "--list-keys", "v1.instance_id"]) == 1
    assert "not a mapping" in capsys.readouterr().err
    assert main(["query", "--root", str(root), "--format",
                 "{{ v1.region }}/{{ v1.instance_id }}"]) == 0
    assert _out(capsys) == "lab-1/i-0001\n"
    assert main(["query", "--root", str(root), "--format", "{{ v1.__class__ }}"]) == 0
    assert main(["query", "--root", str(root), "--format", "{% if %}"]) == 1
    assert "--format:" in capsys.readouterr().err
    # The redacted view keeps the password out of every answer.
    assert main(["query", "--root", str(root), "--redacted", "--all"]) == 0
    assert PASSWORD not in _out(capsys)


def test_clean_machine_id_and_reboot(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _boot(root)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert main(["clean", "--root", str(root), "--machine-id"]) == 0
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"
    assert not (root / "var/lib/bootseed").exists()
    assert main(["clean", "--root", str(root), "--reboot"]) == 1
    assert "--reboot only applies to the running system" in capsys.readouterr().err


def test_collect_logs(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _boot(root)
    with open(root / "var/log/user_data.log", "a") as log:
        log.write(f"a script echoed {PASSWORD}\n")
    tarball = tmp_path / "logs.tar.gz"
    assert main(["collect-logs", "--root", str(root), "--tarfile", str(tarball)]) == 0
    assert _out(capsys).startswith(f"wrote {tarball} (")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        texts = []
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            assert extracted is not None
            texts.append(extracted.read().decode())
    assert {"bootseed-logs/var/log/bootseed.log", "bootseed-logs/var/log/user_data.log",
            "bootseed-logs/run/cloud-init/status.json"} <= set(names)
    assert not [t for t in texts if PASSWORD in t]
    assert any("a script echoed" in t for t in texts)
    assert main(["collect-logs", "--root", str(root), "--tarfile",
                 str(tmp_path / "missing-dir" / "x.tar.gz")]) == 1


def test_analyze_boot(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bootseed.late.bootrecord import boot_time, record
    from bootseed.late.compat.cli import main as cloud_init

    made = record(1_796_000_000.0, 2.5, 4.0, 1_796_000_005.25)
    assert made.kernel_ended == 1_796_000_002.5 and made.agent_activated == 1_796_000_004.0
    assert made.lines() == [
        "-- Most Recent Boot Record --",
        "    Kernel Started at: 2026-11-30 00:53:20.000000 UTC",
        "    Kernel ended boot at: 2026-11-30 00:53:22.500000 UTC",
        "    Kernel time to boot (seconds): 2.500000",
        "    bootseed activated by systemd at: 2026-11-30 00:53:24.000000 UTC",
        "    Time between Kernel end boot and bootseed activation (seconds): 1.500000",
        "    bootseed start: 2026-11-30 00:53:25.250000 UTC"]
    unknown = record(1_796_000_000.0, None, None, None).lines()
    assert unknown[2].endswith("unknown") and unknown[3].endswith("unknown")
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu 1 2 3\nbtime 1796000000\nprocesses 9\n")
    assert boot_time(proc) == 1_796_000_000.0
    (proc / "stat").write_text("cpu 1 2 3\n")
    with pytest.raises(ValueError):
        boot_time(proc)
    # The running system (this host): the kernel's start is always known.
    assert main(["analyze", "boot"]) == 0
    assert "Kernel Started at: 20" in _out(capsys)
    # A target root has no kernel or systemd of its own to ask.
    for command in (main, cloud_init):
        assert command(["analyze", "boot", "--root", str(root)]) == 1
        assert "not with --root" in capsys.readouterr().err
