"""Error messages name the place, never the secret-bearing value; redaction goes by
key (whole words of a key name), so a password the redactor could not know about
does not leak and a user name is not taken for a password."""

from __future__ import annotations

import base64
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from bootseed.late.cli import main
from bootseed.late.modules import phone_home
from bootseed.late.redact import Redactor, is_sensitive_key

from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import Recorder, make_ctx, make_target

DB_PASSWORD = "Db-pass-4b7e-never-leak"
INT_PASSWORD = 73915528
TOKEN = "tok-8c1d-never-leak"
URL_PASSWORD = "Url-pw-19fe-never-leak"
CHPASSWD_PASSWORD = "Chpw-6a5d-never-leak"

BAD_CONFIG = {
    # A mapping where a list belongs: jsonschema's message would quote it whole.
    "write_files": {"path": "/etc/db.conf", "content": f"password={DB_PASSWORD}\n"},
    "users": [{"name": "alice", "plain_text_passwd": INT_PASSWORD}],
    "bootcmd": {"run": f"curl -H 'X-Token: {TOKEN}' http://127.0.0.1/"},
}


def test_schema_errors_do_not_quote_values(tmp_path: Path) -> None:
    root = make_target(tmp_path / "root").root
    plant_seed(root, "#cloud-config\n" + yaml.safe_dump(BAD_CONFIG))
    run = Agent(root).run()
    wheres = [p.where for p in run.status.problems]
    assert any("write_files" in w for w in wheres) and any("bootcmd" in w for w in wheres)
    assert any("plain_text_passwd" in w for w in wheres)
    written = [root / "run/bootseed/status.json", root / "run/bootseed/result.json"]
    texts = [p.read_text() for p in written] + [run.log]
    for text in texts:
        for secret in (DB_PASSWORD, str(INT_PASSWORD), TOKEN):
            assert secret not in text


def test_schema_json_output_does_not_quote_values(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("#cloud-config\n" + yaml.safe_dump(BAD_CONFIG))
    assert main(["schema", "--config-file", str(config), "--json"]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert not doc["valid"] and len(doc["problems"]) >= 3
    for secret in (DB_PASSWORD, str(INT_PASSWORD), TOKEN):
        assert secret not in out


def test_redaction_is_by_key_words_not_substrings(tmp_path: Path) -> None:
    assert not is_sensitive_key("chpasswd")
    assert all(is_sensitive_key(k) for k in ("plain_text_passwd", "rsa_private", "api_key",
                                             "accessToken", "security-credentials"))
    redactor = Redactor()
    redactor.learn_from_config({"chpasswd": {"users": [
        {"name": "bob", "password": CHPASSWD_PASSWORD, "type": "text"}]},
        "users": [{"name": "carol", "passwd": 12345678}]})
    assert redactor.text("created user bob") == "created user bob"
    assert CHPASSWD_PASSWORD not in redactor.text(f"set {CHPASSWD_PASSWORD}")
    assert redactor.data({"passwd": 12345678}) == {"passwd": "<redacted>"}


def test_a_user_named_in_chpasswd_is_still_named_in_the_log(tmp_path: Path) -> None:
    root = make_target(tmp_path / "root").root
    cfg = {"users": [{"name": "bob"}],
           "chpasswd": {"users": [{"name": "bob", "password": CHPASSWD_PASSWORD,
                                   "type": "text"}]}}
    plant_seed(root, "#cloud-config\n" + yaml.safe_dump(cfg))
    run = Agent(root).run()
    assert "created user bob" in run.log
    assert CHPASSWD_PASSWORD not in run.log


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Recorder.seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_phone_home_userinfo_is_sent_as_auth_and_not_logged(
        tmp_path: Path, server: int, caplog: pytest.LogCaptureFixture) -> None:
    target = make_target(tmp_path / "root")
    recorder = Recorder()
    url = f"http://agent:{URL_PASSWORD}@127.0.0.1:{server}/$INSTANCE_ID"
    ctx = make_ctx(target, {"phone_home": {"url": url, "post": ["instance_id"], "tries": 1}},
                   recorder=recorder)
    _Recorder.seen.clear()
    with caplog.at_level(logging.DEBUG):
        phone_home.handle(ctx)
    expected = "Basic " + base64.b64encode(f"agent:{URL_PASSWORD}".encode()).decode()
    assert _Recorder.seen == [expected]
    assert URL_PASSWORD not in caplog.text and f"127.0.0.1:{server}" in caplog.text
    assert URL_PASSWORD in recorder.secrets
