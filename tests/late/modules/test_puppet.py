from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from bootseed.late.handover.inifile import IniValueError
from bootseed.late.modules import puppet
from bootseed.late.redact import Redactor
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import Recorder, make_ctx, make_target

TOKEN = "fleet-token-1234567890"
CA = "-----BEGIN CERTIFICATE-----\nMIIBlab\n-----END CERTIFICATE-----\n"


def _cfg(**extra: object) -> dict:
    return {"puppet": {"install": False, "start_service": False,
                       "conf": {"agent": {"server": "puppet.example", "certname": "%i.%f"},
                                "ca_cert": CA},
                       "csr_attributes": {
                           "custom_attributes": {"1.2.840.113549.1.9.7": TOKEN},
                           "extension_requests": {"pp_role": "web",
                                                  "pp_preshared_key": "psk-9876"}},
                       **extra},
            "fqdn": "Web1.Example.ORG"}


def test_conf_ca_and_csr_attributes_are_written(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    target.write(puppet.DEBIAN_PATHS.conf_file, "[main]\nssldir = /var/lib/puppet/ssl\n")
    recorder = Recorder()
    ctx = make_ctx(target, _cfg(), recorder=recorder)
    puppet.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text(puppet.DEBIAN_PATHS.conf_file) == (
        "[main]\nssldir = /var/lib/puppet/ssl\n\n[agent]\nserver = puppet.example\n"
        "certname = i-test.web1.example.org\n")
    assert target.read_text("/var/lib/puppet/ssl/certs/ca.pem") == CA
    csr_path = target.real_path(puppet.DEBIAN_PATHS.csr_attributes)
    assert stat.S_IMODE(csr_path.stat().st_mode) == 0o600
    assert yaml.safe_load(csr_path.read_text()) == _cfg()["puppet"]["csr_attributes"]
    assert TOKEN in recorder.secrets and "psk-9876" in recorder.secrets


def test_the_token_is_redacted_by_name_too() -> None:
    redactor = Redactor()
    redactor.learn_from_config(_cfg())
    shown = redactor.data(_cfg())["puppet"]["csr_attributes"]
    assert shown["custom_attributes"]["1.2.840.113549.1.9.7"] == "<redacted>"
    assert shown["extension_requests"] == {"pp_role": "web", "pp_preshared_key": "<redacted>"}
    assert TOKEN not in redactor.text(f"sending CSR with {TOKEN}")


def test_a_bad_setting_stops_before_anything_is_written(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    cfg = _cfg()
    cfg["puppet"]["conf"]["agent"]["server"] = "evil\n[main]\nssldir = /tmp"
    with pytest.raises(IniValueError, match=r"puppet\.conf\.agent\.server"):
        puppet.MODULE.handle(make_ctx(target, cfg))
    assert not target.exists(puppet.DEBIAN_PATHS.conf_file)
    assert not target.exists(puppet.DEBIAN_PATHS.csr_attributes)


def test_aio_is_refused_by_name_and_nothing_installed(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"puppet": {"install_type": "aio"}})
    puppet.MODULE.handle(ctx)
    assert [p.where for p in ctx.problems] == ["puppet.install_type"]
    assert not target.exists(puppet.DEBIAN_PATHS.conf_file)


def _agent_root(tmp_path: Path, exit_code: int, words: str) -> TargetRoot:
    make_shell_root(tmp_path)
    target = make_target(tmp_path) if not (tmp_path / "etc").exists() else TargetRoot(tmp_path)
    target.write("/usr/bin/puppet", f"#!/bin/sh\necho \"$*\" > /tmp/agent-args\n"
                 f"echo '{words}'\nexit {exit_code}\n", mode=0o755)
    return target


@pytest.mark.parametrize("code", [0, 2])
def test_exec_runs_the_agent_once_and_takes_changes_as_success(tmp_path: Path,
                                                               code: int) -> None:
    target = _agent_root(tmp_path, code, "Notice: Applied catalog")
    ctx = make_ctx(target, _cfg(exec=True, exec_args="--test --waitforcert 0"))
    puppet.MODULE.handle(ctx)
    assert ctx.problems == []
    assert target.read_text("/tmp/agent-args") == "agent --test --waitforcert 0\n"


def test_an_unsigned_certificate_is_named_in_the_status(tmp_path: Path) -> None:
    target = _agent_root(tmp_path, 1, "Error: Could not request certificate: The CSR was "
                         "rejected")
    ctx = make_ctx(target, _cfg(exec=True))
    puppet.MODULE.handle(ctx)
    assert target.read_text("/tmp/agent-args") == "agent --test\n"
    [problem] = ctx.problems
    assert problem.where == "puppet.exec"
    assert "exited 1" in problem.message and "did not sign" in problem.message
    assert TOKEN not in problem.message
