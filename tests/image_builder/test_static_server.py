from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.image_builder.mocks.static import StaticServer


def _get(server: StaticServer, path: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StaticServer]:
    pool = tmp_path / "pool" / "main"
    pool.mkdir(parents=True)
    # Names as apt-get download writes them: the epoch's colon as "%3a", a "+" kept.
    (pool / "git_1%3a2.39.5-0+deb12u3_amd64.deb").write_bytes(b"git deb")
    (pool / "libcurl3-gnutls_7.88.1-10+deb12u15_amd64.deb").write_bytes(b"curl deb")
    (tmp_path.parent / "outside").write_bytes(b"secret")
    srv = StaticServer(tmp_path).start()
    yield srv
    srv.stop()


def test_file_names_as_apt_requests_them(server: StaticServer) -> None:
    assert _get(server, "/pool/main/git_1%253a2.39.5-0%2bdeb12u3_amd64.deb") == (200, b"git deb")
    assert _get(server, "/pool/main/libcurl3-gnutls_7.88.1-10%2bdeb12u15_amd64.deb") == (
        200, b"curl deb")
    assert _get(server, "/pool/main/libcurl3-gnutls_7.88.1-10+deb12u15_amd64.deb") == (
        200, b"curl deb")


@pytest.mark.parametrize("path", ["/%2e%2e/outside", "/../outside", "/pool/%00x"])
def test_nothing_outside_the_root(server: StaticServer, path: str) -> None:
    assert _get(server, path)[0] in (403, 404)
