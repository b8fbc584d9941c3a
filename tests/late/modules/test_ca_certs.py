"""``ca_certs`` against a runnable target whose ``update-ca-certificates`` is a shell
script recording its arguments and the local certificates it found."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import ca_certs
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx, make_target

RECORD = "/var/log/uca-record"
TOOL = f"""#!/bin/sh
echo "args: $*" > {RECORD}
for f in /usr/local/share/ca-certificates/*.crt; do echo "$f" >> {RECORD}; done
"""
CONF = "# comment\nmozilla/A_Root.crt\n!mozilla/Old.crt\n\nmozilla/B_Root.crt\n"


def _pem(seed: bytes) -> str:
    der = b"\x30\x82\x01\x00" + seed * 60  # a DER SEQUENCE, long enough to wrap
    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i:i + 76] for i in range(0, len(body), 76))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def _target(root: Path, tool: bool = True) -> TargetRoot:
    target = make_target(root)
    make_shell_root(root)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    target.write(ca_certs.CONF, CONF)
    if tool:
        target.write(ca_certs.TOOL, TOOL, mode=0o755)
    return target


def _run(target: TargetRoot, cfg: dict[str, Any]) -> list[Any]:
    ctx = make_ctx(target, cfg)
    ca_certs.MODULE.handle(ctx)
    return ctx.problems


@pytest.mark.parametrize("key", ["ca_certs", "ca-certs"])
def test_trusted_certs_written_and_store_updated(tmp_path: Path, key: str) -> None:
    target = _target(tmp_path)
    chain = _pem(b"b") + "\n" + _pem(b"c")
    assert _run(target, {key: {"trusted": [_pem(b"a"), chain]}}) == []
    one = target.read_text(f"{ca_certs.LOCAL_DIR}/bootseed-1.crt")
    assert one.startswith("-----BEGIN CERTIFICATE-----\n") and one.count("BEGIN") == 1
    assert max(len(line) for line in one.splitlines()) == 64
    assert target.read_text(f"{ca_certs.LOCAL_DIR}/bootseed-2.crt").count("BEGIN") == 2
    assert target.read_text(RECORD).splitlines() == [
        "args: ", f"{ca_certs.LOCAL_DIR}/bootseed-1.crt", f"{ca_certs.LOCAL_DIR}/bootseed-2.crt"]
    assert target.read_text(ca_certs.CONF) == CONF


@pytest.mark.parametrize("flag", ["remove_defaults", "remove-defaults"])
def test_remove_defaults_disables_every_listed_cert(tmp_path: Path, flag: str) -> None:
    target = _target(tmp_path)
    assert _run(target, {"ca_certs": {flag: True}}) == []
    assert target.read_text(ca_certs.CONF) == (
        "# comment\n!mozilla/A_Root.crt\n!mozilla/Old.crt\n\n!mozilla/B_Root.crt\n")
    assert target.read_text(RECORD).startswith("args: --fresh\n")


def test_bad_certs_are_reported_by_place_and_the_rest_added(tmp_path: Path) -> None:
    target = _target(tmp_path)
    not_der = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\nMAAA\n-----END PRIVATE KEY-----\n"
    bad = ["just text", not_der, key, _pem(b"x") + "trailing junk", 5,
           "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"]
    problems = _run(target, {"ca_certs": {"trusted": [*bad, _pem(b"ok")]}})
    assert [p.where for p in problems] == [f"ca_certs.trusted[{i}]" for i in range(len(bad))]
    assert os.listdir(tmp_path / ca_certs.LOCAL_DIR.lstrip("/")) == ["bootseed-1.crt"]
    written = target.read_text(f"{ca_certs.LOCAL_DIR}/bootseed-1.crt")
    assert written == ca_certs.pem_certificates(_pem(b"ok"))


def test_earlier_instance_certs_are_replaced(tmp_path: Path) -> None:
    target = _target(tmp_path)
    target.write(f"{ca_certs.LOCAL_DIR}/bootseed-3.crt", _pem(b"old"))
    target.write(f"{ca_certs.LOCAL_DIR}/site.crt", _pem(b"site"))
    assert _run(target, {"ca_certs": {"trusted": [_pem(b"new")]}}) == []
    assert sorted(os.listdir(tmp_path / ca_certs.LOCAL_DIR.lstrip("/"))) == [
        "bootseed-1.crt", "site.crt"]


def test_missing_tool_is_reported_and_files_written(tmp_path: Path) -> None:
    target = _target(tmp_path, tool=False)
    (problem,) = _run(target, {"ca_certs": {"trusted": [_pem(b"a")]}})
    assert problem.where == "ca_certs" and "not installed" in problem.message
    assert target.exists(f"{ca_certs.LOCAL_DIR}/bootseed-1.crt")


def test_failing_tool_is_reported(tmp_path: Path) -> None:
    target = _target(tmp_path)
    target.write(ca_certs.TOOL, "#!/bin/sh\necho broken store\nexit 2\n", mode=0o755)
    (problem,) = _run(target, {"ca_certs": {"trusted": [_pem(b"a")]}})
    assert "status 2" in problem.message and "broken store" in problem.message


@pytest.mark.parametrize(("cfg", "where"), [
    ({"ca_certs": ["x"]}, "ca_certs"),
    ({"ca_certs": {"trusted": "pem"}}, "ca_certs.trusted"),
    ({"ca_certs": {"remove_defaults": "yes"}}, "ca_certs.remove_defaults"),
])
def test_bad_shapes_change_nothing(tmp_path: Path, cfg: dict[str, Any], where: str) -> None:
    target = _target(tmp_path)
    (problem,) = _run(target, cfg)
    assert (problem.where, problem.level) == (where, Level.ERROR)
    assert target.read_text(ca_certs.CONF) == CONF and not target.exists(RECORD)


def test_both_spellings_take_ca_certs(tmp_path: Path) -> None:
    target = _target(tmp_path)
    problems = _run(target, {"ca_certs": {"trusted": [_pem(b"a")]},
                             "ca-certs": {"remove_defaults": True}})
    assert [(p.where, p.level) for p in problems] == [("ca-certs", Level.WARNING)]
    assert target.read_text(ca_certs.CONF) == CONF
