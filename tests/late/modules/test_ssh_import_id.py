"""ssh_import_id: keys from a real key server on 127.0.0.1 speaking Launchpad's
``/~USER/+sshkeys`` and GitHub's ``/USER.keys`` shapes; an unreachable server
is an error that names the id and says so."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from bootseed.contract.problems import Level
from bootseed.late.modules import ssh_import_id, users_groups
from bootseed.late.modules.ssh_import_id import SshImportError, parse_id
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx, make_target

KEY_LP = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWxwbHBscGxwbHBscGxwbHBscGxwbHBs alice@lp"
KEY_GH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleWdoZ2hnaGdoZ2hnaGdoZ2hnaGdoZ2hn alice@gh"
KEY_GH2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDbobbobbobbobbobbobbobbobbobbobbobbobbob bob@gh"
KEY_OWN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0c2VzdGtleW93bm93bm93bm93bm93bm93bm93bm93 own@x"
PAGES = {
    "/~alice/+sshkeys": KEY_LP + "\n",
    "/alice.keys": KEY_GH + "\n",
    "/bob.keys": KEY_GH2 + "\n\n",
    "/nokeys.keys": "",
}


class KeyServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        KeyServer.requests.append(self.path)
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    KeyServer.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeyServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def target(tmp_path: Path) -> TargetRoot:
    return make_target(tmp_path / "root")


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _servers(base: str) -> dict[str, object]:
    return {"lp": base + "/~{user}/+sshkeys", "gh": base + "/{user}.keys", "timeout": 2}


def _setup(target: TargetRoot, cfg: dict) -> None:
    users_groups.MODULE.handle(make_ctx(target, cfg, "users_groups"))


def _keys(target: TargetRoot, user: str) -> list[str]:
    path = target.path(f"/home/{user}/.ssh/authorized_keys")
    return path.read_text().splitlines()


def test_parse_id() -> None:
    assert str(parse_id("gh:alice")) == "gh:alice"
    assert str(parse_id("lp:alice")) == "lp:alice"
    assert str(parse_id("alice")) == "lp:alice"
    for bad in ("xx:alice", "gh:", "gh:../../etc", "gh:a/b", "gh:a?x=1"):
        with pytest.raises(ValueError):
            parse_id(bad)


def test_imports_launchpad_and_github_keys(target: TargetRoot, server: str) -> None:
    cfg = {"users": [{"name": "alice", "ssh_authorized_keys": [KEY_OWN],
                      "ssh_import_id": ["lp:alice", "gh:alice"]},
                     {"name": "bob", "ssh_import_id": "gh:bob"}],
           "ssh_import_id_servers": _servers(server)}
    _setup(target, cfg)
    ctx = make_ctx(target, cfg, "ssh_import_id")
    ssh_import_id.MODULE.handle(ctx)
    assert _keys(target, "alice") == [KEY_OWN, KEY_LP, KEY_GH]
    assert _keys(target, "bob") == [KEY_GH2]
    assert sorted(KeyServer.requests) == ["/alice.keys", "/bob.keys", "/~alice/+sshkeys"]
    assert ctx.problems == []
    # Again (a re-run): nothing doubles.
    ssh_import_id.MODULE.handle(make_ctx(target, cfg, "ssh_import_id"))
    assert _keys(target, "alice") == [KEY_OWN, KEY_LP, KEY_GH]


def test_top_level_ids_go_to_the_default_user(target: TargetRoot, server: str) -> None:
    cfg = {"users": ["default"], "ssh_import_id": ["alice"],
           "ssh_import_id_servers": _servers(server)}
    _setup(target, cfg)
    ssh_import_id.MODULE.handle(make_ctx(target, cfg, "ssh_import_id"))
    assert _keys(target, "debian") == [KEY_LP]


def test_unknown_user_and_no_keys(target: TargetRoot, server: str) -> None:
    cfg = {"users": [{"name": "carol", "ssh_import_id": ["gh:ghost", "gh:nokeys", "gh:bob"]}],
           "ssh_import_id_servers": _servers(server)}
    _setup(target, cfg)
    ctx = make_ctx(target, cfg, "ssh_import_id")
    with pytest.raises(SshImportError) as failed:
        ssh_import_id.MODULE.handle(ctx)
    assert str(failed.value) == (f"users[0].ssh_import_id[0]: gh:ghost: no such user at "
                                 f"{server}/ghost.keys")
    # The ids that worked still count.
    assert _keys(target, "carol") == [KEY_GH2]
    [empty] = ctx.problems
    assert (empty.where, empty.level) == ("users[0].ssh_import_id[1]", Level.WARNING)
    assert "lists no keys" in empty.message


def test_unreachable_key_server_is_reported_clearly(target: TargetRoot) -> None:
    cfg = {"users": [{"name": "dave", "ssh_authorized_keys": [KEY_OWN],
                      "ssh_import_id": ["gh:dave"]}],
           "ssh_import_id_servers": _servers(f"http://127.0.0.1:{_unused_port()}")}
    _setup(target, cfg)
    with pytest.raises(SshImportError) as failed:
        ssh_import_id.MODULE.handle(make_ctx(target, cfg, "ssh_import_id"))
    message = str(failed.value)
    assert message.startswith("users[0].ssh_import_id[0]: gh:dave: key server unreachable (")
    assert "refused" in message
    assert _keys(target, "dave") == [KEY_OWN]


def test_missing_user_and_bad_ids(target: TargetRoot, server: str) -> None:
    cfg = {"users": [{"name": "erin", "ssh_import_id": ["xx:erin"]}],
           "ssh_import_id_servers": _servers(server)}
    with pytest.raises(SshImportError, match="user 'erin' does not exist"):
        ssh_import_id.MODULE.handle(make_ctx(target, cfg, "ssh_import_id"))
    _setup(target, cfg)
    with pytest.raises(SshImportError, match="unknown key server 'xx'"):
        ssh_import_id.MODULE.handle(make_ctx(target, cfg, "ssh_import_id"))
    assert KeyServer.requests == []
