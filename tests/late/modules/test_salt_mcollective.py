from __future__ import annotations

import stat
from pathlib import Path

import yaml
from bootseed.contract.problems import Level
from bootseed.late.modules import mcollective, salt_minion
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import Recorder, make_ctx, make_target

PUB = "-----BEGIN PUBLIC KEY-----\nMIIBsaltpub\n-----END PUBLIC KEY-----\n"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsaltpriv\n-----END RSA PRIVATE KEY-----\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _bookworm_without_salt(tmp_path: Path) -> TargetRoot:
    """dpkg-query says "not installed" and apt-get cannot find salt: stand-ins that
    answer as the real tools do on bookworm, which has no Salt."""
    make_shell_root(tmp_path)
    target = make_target(tmp_path)
    target.write("/usr/bin/dpkg-query", "#!/bin/sh\necho 'dpkg-query: no packages found' >&2\n"
                 "exit 1\n", mode=0o755)
    target.write("/usr/bin/apt-get", "#!/bin/sh\ncase \"$*\" in *install*) "
                 "echo 'E: Unable to locate package salt-minion'; exit 100;; esac\nexit 0\n",
                 mode=0o755)
    return target


def test_salt_files_are_written_and_a_missing_package_is_reported(tmp_path: Path) -> None:
    target = _bookworm_without_salt(tmp_path)
    recorder = Recorder()
    ctx = make_ctx(target, {"salt_minion": {
        "conf": {"master": "salt.example.org", "file_client": "remote"},
        "grains": {"role": ["web"], "datacenter": "lab"},
        "public_key": PUB, "private_key": PEM}}, recorder=recorder)
    salt_minion.MODULE.handle(ctx)
    assert yaml.safe_load(target.read_text("/etc/salt/minion")) == {
        "master": "salt.example.org", "file_client": "remote"}
    assert yaml.safe_load(target.read_text("/etc/salt/grains")) == {
        "role": ["web"], "datacenter": "lab"}
    pki = target.real_path(salt_minion.DEFAULT_PKI_DIR)
    assert (pki / "minion.pub").read_text() == PUB and _mode(pki / "minion.pub") == 0o644
    assert (pki / "minion.pem").read_text() == PEM and _mode(pki / "minion.pem") == 0o600
    assert _mode(pki) == 0o700
    assert PEM in recorder.secrets
    [problem] = ctx.problems
    assert problem.where == "salt_minion.pkg_name" and problem.level == Level.WARNING
    assert "Unable to locate package salt-minion" in problem.message


def test_pki_dir_follows_the_minion_conf(tmp_path: Path) -> None:
    target = _bookworm_without_salt(tmp_path)
    ctx = make_ctx(target, {"salt_minion": {"conf": {"pki_dir": "/srv/salt/pki"},
                                            "public_key": PUB}})
    salt_minion.MODULE.handle(ctx)
    assert target.read_text("/srv/salt/pki/minion.pub") == PUB
    assert not target.exists(f"{salt_minion.DEFAULT_PKI_DIR}/minion.pub")


def test_mcollective_server_cfg_and_certs(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    target.write(mcollective.SERVER_CFG, "main_collective = mcollective\nloglevel = info\n")
    ctx = make_ctx(target, {"mcollective": {"conf": {
        "loglevel": "debug", "plugin.stomp.host": "mq.example.org",
        "public-cert": PUB, "private-cert": PEM}}})
    mcollective.MODULE.handle(ctx)
    assert target.read_text(mcollective.SERVER_CFG) == (
        "main_collective = mcollective\nloglevel = debug\nplugin.stomp.host = mq.example.org\n"
        f"plugin.ssl_server_public = {mcollective.PUBLIC_CERT}\n"
        f"plugin.ssl_server_private = {mcollective.PRIVATE_CERT}\nsecurityprovider = ssl\n")
    assert _mode(target.real_path(mcollective.PRIVATE_CERT)) == 0o600
    assert _mode(target.real_path(mcollective.PUBLIC_CERT)) == 0o644
    assert ctx.problems == []
