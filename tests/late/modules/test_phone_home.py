from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer
from bootseed.image_builder.mocks.sink import PhoneHomeSink
from bootseed.late.modules import phone_home, ssh
from bootseed.late.modules.base import InstanceInfo
from bootseed.late.modules.phone_home import MAX_TRIES, PhoneHomeError, post_form
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target

INSTANCE = InstanceInfo("i-0123abc", local_hostname="pal.example.net")


class _Flaky(LoggingHandler):
    """Answers 503 to the first ``server.failures`` POSTs, then 200."""

    def do_POST(self) -> None:
        self.record(self.read_body())
        srv = self.server
        assert isinstance(srv, FlakyServer)
        with srv.count_lock:
            srv.seen += 1
            fail = srv.seen <= srv.failures
        self.reply(503 if fail else 200, b"busy\n" if fail else b"ok\n")


class FlakyServer(MockServer):
    def __init__(self, failures: int) -> None:
        super().__init__(_Flaky)
        self.failures = failures
        self.seen = 0
        self.count_lock = threading.Lock()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> TargetRoot:
    t = make_target(tmp_path_factory.mktemp("ph") / "root")
    ssh.MODULE.handle(make_ctx(t, {"ssh_genkeytypes": ["ed25519", "rsa"]}, "ssh"))
    return t


def run(target: TargetRoot, cfg: dict) -> None:
    phone_home.MODULE.handle(make_ctx(target, cfg, "phone_home", instance=INSTANCE))


def test_posts_all_fields_with_instance_id_in_url(target: TargetRoot) -> None:
    with PhoneHomeSink() as sink:
        run(target, {"phone_home": {"url": f"{sink.url}/ph/$INSTANCE_ID/", "post": "all"}})
        [req] = sink.requests_to("/", method="POST")
        [form] = sink.posted_forms()
    assert req.path == "/ph/i-0123abc/"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form["instance_id"] == ["i-0123abc"]
    assert form["hostname"] == ["pal"]
    assert form["fqdn"] == ["pal.example.net"]
    ed = target.read_text("/etc/ssh/ssh_host_ed25519_key.pub").strip()
    assert form["pub_key_ed25519"] == [ed]
    assert form["pub_key_rsa"] == [target.read_text("/etc/ssh/ssh_host_rsa_key.pub").strip()]
    assert form["pub_key_ecdsa"] == ["N/A"]  # not generated in this target
    assert form["pub_key_dsa"] == ["N/A"]  # cloud-init's field; OpenSSH 9.2 has no DSA keys


def test_post_subset_and_unknown_key_reported(target: TargetRoot) -> None:
    with PhoneHomeSink() as sink:
        run(target, {"phone_home": {"url": sink.url + "/", "post": ["instance_id", "fqdn"]}})
        run(target, {"phone_home": {"url": sink.url + "/", "post": ["pub_key_dsa"]}})
        with pytest.raises(PhoneHomeError, match="unknown key 'pub_key_dsa2'"):
            run(
                target,
                {"phone_home": {"url": sink.url + "/", "post": ["hostname", "pub_key_dsa2"]}},
            )
        forms = sink.posted_forms()
    assert [sorted(f) for f in forms] == [["fqdn", "instance_id"], ["pub_key_dsa"], ["hostname"]]
    assert forms[1]["pub_key_dsa"] == ["N/A"]


def test_retries_until_success(target: TargetRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phone_home, "RETRY_DELAY", 0.01)
    with FlakyServer(failures=2) as srv:
        run(target, {"phone_home": {"url": srv.url + "/", "tries": 5}})
        assert len(srv.requests_to("/", method="POST")) == 3


def test_gives_up_after_tries_and_caps_them(
    target: TargetRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(phone_home, "RETRY_DELAY", 0.0)
    with FlakyServer(failures=10_000) as srv:
        with pytest.raises(PhoneHomeError, match="failed after 2 tries: HTTP 503"):
            run(target, {"phone_home": {"url": srv.url + "/x", "tries": 2}})
        assert len(srv.requests) == 2
        with pytest.raises(PhoneHomeError, match=f"failed after {MAX_TRIES} tries"):
            run(target, {"phone_home": {"url": srv.url + "/x", "tries": 10_000}})
        assert len(srv.requests) == 2 + MAX_TRIES


def test_unresponsive_server_is_bounded_by_timeout_and_deadline() -> None:
    # A listener that accepts and never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        result = post_form(url, {"a": "b"}, tries=10, timeout=0.2, delay=0.0, deadline=0.5)
    assert not result.ok
    assert 1 <= result.tries <= 3
    assert "Timeout" in result.last_error or "timed out" in result.last_error


def test_refused_connection_reported(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens
    result = post_form(f"http://127.0.0.1:{port}/", {}, tries=2, timeout=1.0, delay=0.0)
    assert not result.ok and result.tries == 2
    assert result.last_error == "ConnectionRefusedError: [Errno 111] Connection refused"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"phone_home": {"post": "all"}}, "phone_home.url is required"),
        ({"phone_home": {"url": "ftp://127.0.0.1/"}}, "not an http"),
        ({"phone_home": {"url": "http://127.0.0.1:9/", "tries": 0}}, "at least 1"),
        ({"phone_home": {"url": "http://127.0.0.1:9/", "post": "some"}}, "neither 'all'"),
        ({"phone_home": "http://x"}, "expected a mapping"),
    ],
)
def test_bad_config(target: TargetRoot, cfg: dict, message: str) -> None:
    with pytest.raises(PhoneHomeError, match=message):
        run(target, cfg)


def test_posting_does_not_import_requests() -> None:
    # requests costs seconds of import under an emulated CPU in the first boot's final
    # stage; the standard library's client does the POST.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys; from bootseed.late.modules.phone_home import post_form; "
            f"r = post_form('http://127.0.0.1:{port}/', {{'a': 'b'}}, tries=1, timeout=1.0); "
            "print(r.tries, 'requests' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["1", "False"]
