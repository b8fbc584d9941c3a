"""The ``cloud-init`` command in-process, against temp target roots: every verb and
exit code."""

from __future__ import annotations

import email
import json
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from bootseed.late.cli import main as bootseed
from bootseed.late.compat.cli import UNSUPPORTED, main
from bootseed.late.redact import Redactor
from bootseed.late.status import RunStatus, write_status

from testsupport.chroot import make_shell_root
from testsupport.runenv import plant_seed, run_cli_first_boot
from testsupport.targetfs import make_target

PASSWORD = "planted-Passw0rd-xyz"
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
    run_cli_first_boot(bootseed, root, user_data)


def _member_text(tar: tarfile.TarFile, member: tarfile.TarInfo) -> str:
    extracted = tar.extractfile(member)
    assert extracted is not None
    return extracted.read().decode()


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_status_before_during_and_after_the_run(root: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--root", str(root)]) == 0
    assert _out(capsys) == "status: not run\n"
    _boot(root)
    capsys.readouterr()
    assert main(["status", "--root", str(root)]) == 0
    assert _out(capsys) == "status: done\n"
    assert main(["status", "--root", str(root), "--long"]) == 0
    long = _out(capsys).splitlines()
    assert long[:2] == ["status: done", "boot_status_code: enabled-by-generator"]
    assert long[2].startswith("last_update: ") and long[3] == "detail:"
    assert main(["status", "--root", str(root), "--format", "json"]) == 0
    doc = json.loads(_out(capsys))
    # cloud-init 22.4.2's fields, as the boot comparison (tests/boot) saw them: the
    # fields, and again under "schemas" by "_schema_version".
    fields = {"status", "boot_status_code", "datasource", "detail", "errors", "last_update"}
    assert set(doc) == fields | {"_schema_version", "schemas"}
    assert doc["_schema_version"] == "1" and doc["schemas"] == {"1": {
        k: doc[k] for k in fields}}
    assert doc["status"] == "done" and doc["datasource"] == "nocloud" and doc["errors"] == []
    assert doc["last_update"].endswith(" +0000") and doc["detail"] == "bootseed seed source nocloud"
    assert main(["status", "--root", str(root), "--format", "yaml"]) == 0
    assert yaml.safe_load(_out(capsys)) == doc


def test_status_exits_1_on_error_and_disabled_is_0(root: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = root / "run/bootseed"
    failed = RunStatus(state="error", errors=["seed cache unusable: damaged"])
    write_status(run_dir, failed, Redactor())
    assert main(["status", "--root", str(root), "--format", "json"]) == 1
    doc = json.loads(_out(capsys))
    assert doc["status"] == "error" and doc["errors"] == ["seed cache unusable: damaged"]
    assert doc["detail"] == "seed cache unusable: damaged"  # the first error, as cloud-init
    write_status(run_dir, RunStatus(state="disabled"), Redactor())
    (root / "etc/bootseed").mkdir(parents=True, exist_ok=True)
    (root / "etc/bootseed/disabled").write_text("")
    assert main(["status", "--root", str(root), "--long"]) == 0
    assert "boot_status_code: disabled-by-marker-file" in _out(capsys)


def test_status_wait_polls_until_the_run_is_over(root: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = root / "run/bootseed"
    write_status(run_dir, RunStatus(state="running", stage="config"), Redactor())

    def finish() -> None:
        time.sleep(0.6)
        write_status(run_dir, RunStatus(state="done"), Redactor())

    finisher = threading.Thread(target=finish)
    finisher.start()
    assert main(["status", "--root", str(root), "--wait"]) == 0
    finisher.join()
    out = _out(capsys)
    assert out.startswith(".") and out.endswith("\nstatus: done\n")


def test_query(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--root", str(root), "instance_id"]) == 1  # not run yet
    _boot(root)
    capsys.readouterr()
    assert main(["query", "--root", str(root)]) == 1  # nothing asked for
    assert main(["query", "--root", str(root), "v1.instance_id"]) == 0
    assert _out(capsys) == "i-0001\n"
    assert main(["query", "--root", str(root), "region"]) == 0
    assert _out(capsys) == "lab-1\n"
    assert main(["query", "--root", str(root), "--list-keys"]) == 0
    keys = _out(capsys).split()
    assert {"v1", "ds", "merged_cfg", "instance_id"} <= set(keys) and keys == sorted(keys)
    assert main(["query", "--root", str(root), "--list-keys", "v1"]) == 0
    assert {"cloud_name", "availability_zone", "platform"} <= set(_out(capsys).split())
    assert main(["query", "--root", str(root), "--format",
                 "{{ v1.cloud_name }}/{{ instance_id }}"]) == 0
    assert _out(capsys) == "nocloud/i-0001\n"
    assert main(["query", "--root", str(root), "--all"]) == 0
    everything = json.loads(_out(capsys))
    assert everything["v1"]["local_hostname"] == "seeded"
    assert main(["query", "--root", str(root), "no.such.key"]) == 1
    # The template runs in Jinja's sandbox: no way from the data to Python's internals.
    assert main(["query", "--root", str(root), "--format", "{{ v1.__class__.__mro__ }}"]) == 1
    assert "unsafe" in capsys.readouterr().err
    assert main(["query", "--root", str(root), "--format", "{% if %}"]) == 1


def test_query_as_a_user_without_the_sensitive_file_gets_the_redacted_view(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _boot(root)
    capsys.readouterr()
    # What a non-root user faces: the 0600 file cannot be read.
    (root / "run/cloud-init/instance-data-sensitive.json").unlink()
    assert main(["query", "--root", str(root), "--all"]) == 0
    out = _out(capsys)
    assert PASSWORD not in out and json.loads(out)["merged_cfg"] == "<redacted>"


def test_clean_maps_onto_bootseed_clean(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _boot(root)
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    assert main(["clean", "--root", str(root), "--logs", "--machine-id"]) == 0
    assert not (root / "var/lib/bootseed").exists()
    assert not os.path.lexists(root / "var/lib/cloud/instance")
    assert not (root / "run/cloud-init").exists()
    assert not (root / "var/log/bootseed.log").exists()
    assert not os.path.lexists(root / "var/log/cloud-init-output.log")
    assert (root / "etc/machine-id").read_text() == "uninitialized\n"
    assert (root / "run/bootseed/seed.json").exists()
    assert main(["clean", "--root", str(root), "--seed"]) == 0
    assert not (root / "run/bootseed").exists()
    assert main(["clean", "--root", str(root), "--reboot"]) == 1  # never reboots a --root


def test_analyze_show_blame_dump(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "show", "--root", str(root)]) == 1  # nothing ran
    _boot(root)
    capsys.readouterr()
    assert main(["analyze", "blame", "--root", str(root)]) == 0
    assert "modules:" in _out(capsys)
    assert main(["analyze", "show", "--root", str(root)]) == 0
    assert "stages (total" in _out(capsys)
    assert main(["analyze", "dump", "--root", str(root)]) == 0
    assert len(json.loads(_out(capsys))["stages"]) == 4


def test_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("#cloud-config\nruncmd: [ls]\n")
    assert main(["schema", "--config-file", str(good), "--annotate"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("#cloud-config\nruncmd: 5\n")
    assert main(["schema", "-c", str(bad)]) == 1
    assert "line 2" in _out(capsys)


def test_init_local_then_modules_final(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_seed(root, USER_DATA)
    assert main(["init", "--local", "--root", str(root)]) == 0
    status = json.loads((root / "run/cloud-init/status.json").read_text())["v1"]
    assert status["init-local"]["finished"] is not None
    assert status["modules-final"]["start"] is None
    assert not (root / "var/lib/cloud/instance/boot-finished").exists()
    assert main(["status", "--root", str(root)]) == 0
    assert capsys.readouterr().out == "status: running\n"
    # The stages this boot has not run yet (network, config) run first.
    assert main(["modules", "--mode", "final", "--root", str(root)]) == 0
    status = json.loads((root / "run/cloud-init/status.json").read_text())["v1"]
    assert status["stage"] is None
    assert all(status[s]["finished"] for s in ("init", "modules-config", "modules-final"))
    assert (root / "var/lib/cloud/instance/boot-finished").exists()
    assert (root / "runcmd-count").read_text() == "run\n"


def test_schema_system(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_seed(root, "#cloud-config\nusers:\n  - name: bob\n    shel: /bin/sh\n")
    assert main(["schema", "--system", "--root", str(root)]) == 0
    assert "did you mean 'shell'?" in capsys.readouterr().out


def test_collect_logs_leaves_secrets_out(root: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _boot(root)
    # A secret that reached a log line in spite of the redactor, as if from an old run.
    with open(root / "var/log/bootseed.log", "a") as log:
        log.write(f"module said {PASSWORD}\n")
    tarball = tmp_path / "logs.tar.gz"
    assert main(["collect-logs", "--root", str(root), "--tarfile", str(tarball)]) == 0
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        texts = [_member_text(tar, m) for m in tar.getmembers() if m.isfile()]
    assert "bootseed-logs/var/log/bootseed.log" in names
    assert "bootseed-logs/run/bootseed/status.json" in names
    assert "bootseed-logs/run/bootseed/seed.json" in names
    assert not [n for n in names if "sensitive" in n or "user-data.txt" in n]
    assert texts and not [t for t in texts if PASSWORD in t]
    assert main(["collect-logs", "--root", str(root), "--tarfile",
                 str(tmp_path / "no-dir" / "x.tar.gz")]) == 1


def test_devel_make_mime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("#cloud-config\nruncmd: [ls]\n")
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert main(["devel", "make-mime", "-a", f"{config}:cloud-config",
                 "-a", f"{script}:x-shellscript"]) == 0
    message = email.message_from_string(_out(capsys))
    parts = [p for p in message.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/cloud-config", "text/x-shellscript"]
    assert parts[1].get_filename() == "hello.sh"
    assert parts[0].get_payload(decode=True).decode() == config.read_text()
    assert main(["devel", "make-mime", "-a", f"{config}:no-such-type"]) == 1
    assert main(["devel", "make-mime"]) == 1
    assert main(["devel", "make-mime", "--list-types"]) == 0
    assert "cloud-config" in _out(capsys).split()
    assert main(["devel", "net-convert"]) == 1


@pytest.mark.parametrize("verb", [*UNSUPPORTED, "no-such-verb"])
def test_other_verbs_say_unsupported_and_exit_1(verb: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main([verb, "--some-flag"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"cloud-init {verb}: not supported by bootseed")


def test_the_mime_user_data_boots(root: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """What make-mime builds is user-data the agent runs."""
    script = tmp_path / "mark.sh"
    script.write_text("#!/bin/sh\necho marked > /marked\n")
    assert main(["devel", "make-mime", "-a", f"{script}:x-shellscript"]) == 0
    _boot(root, _out(capsys))
    assert (root / "marked").read_text() == "marked\n"
