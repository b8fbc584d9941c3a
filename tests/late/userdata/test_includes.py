"""#include / #include-once against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer
from bootseed.late.userdata.engine import process
from bootseed.late.userdata.types import Limits

from .helpers import P, multipart

FAST = Limits(include_timeout=1.0, include_retries=0, include_retry_delay=0.0)


class Handler(LoggingHandler):
    def do_GET(self) -> None:
        self.record()
        base = self.server.url
        path = self.path
        try:
            if path.startswith("/cfg/"):
                name = path[len("/cfg/") :]
                self.reply(200, f"#cloud-config\nruncmd: [{name}]\n".encode())
            elif path == "/script":
                self.reply(200, b"#!/bin/sh\necho included\n")
            elif path == "/redirect":
                self._redirect("/cfg/redirected")
            elif path == "/loop":
                self._redirect("/loop")
            elif path == "/flaky":
                if len(self.server.requests_to("/flaky")) < 3:
                    self.reply(503, b"busy")
                else:
                    self.reply(200, b"#cloud-config\nruncmd: [third-time]\n")
            elif path == "/slow-headers":
                time.sleep(3)
                self.reply(200, b"#cloud-config\nruncmd: [late]\n")
            elif path == "/slow-body":
                self._trickle()
            elif path == "/big-declared":
                self.send_response(200)
                self.send_header("Content-Length", str(50 << 20))
                self.end_headers()
                self.wfile.write(b"#cloud-config\n")
            elif path == "/big-undeclared":
                self._stream_without_length(2 << 20)
            elif path == "/gzip":
                self.reply(
                    200, gzip.compress(b"#cloud-config\nruncmd: [gzipped]\n"), "application/gzip"
                )
            elif path == "/content-encoding":
                body = gzip.compress(b"#cloud-config\nruncmd: [encoded]\n")
                self.send_response(200)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif path == "/nested":
                self.reply(200, f"#include\n{base}/cfg/inner\n{base}/script\n".encode())
            elif path == "/self":
                self.reply(200, f"#include {base}/self\n".encode())
            elif path.startswith("/deep/"):
                level = int(path.rsplit("/", 1)[1])
                self.reply(200, f"#include {base}/deep/{level + 1}\n".encode())
            elif path == "/mime":
                self.reply(
                    200,
                    multipart(
                        P(b"#!/bin/sh\necho from mime\n", filename="m.sh"),
                        P(b"#cloud-config\nruncmd: [mime]\n", filename="m.yaml"),
                    ),
                )
            elif path == "/broken-yaml":
                self.reply(200, b"#cloud-config\nruncmd: [\n")
            else:
                self.reply(404, b"no such thing")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _trickle(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        deadline = time.monotonic() + 8
        self.wfile.write(b"#")
        while time.monotonic() < deadline:
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.05)

    def _stream_without_length(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b"#!/bin/sh\n")
        chunk = b"#" * 65536
        for _ in range(size // len(chunk)):
            self.wfile.write(chunk)


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(Handler) as srv:
        yield srv


def _include(*urls: str) -> bytes:
    return ("#include\n" + "\n".join(urls) + "\n").encode()


def test_include_fetches_and_merges_in_order(server: MockServer) -> None:
    raw = multipart(
        P(b"#cloud-config\nruncmd: [local]\nmerge_how: 'dict(recurse_array)+list(append)'\n"),
        P(_include(f"{server.url}/cfg/a", f"{server.url}/script"), filename="inc"),
    )
    result = process(raw, limits=FAST)
    assert result.problems == []
    assert [p.source for p in result.parts] == [
        "user-data part 1",
        f"user-data part 2 (inc) include {server.url}/cfg/a",
        f"user-data part 2 (inc) include {server.url}/script",
    ]
    assert result.cloud_config == {"runcmd": ["a"]}  # default merge of the later part
    assert result.key_origins[("runcmd", 0)] == (
        f"user-data part 2 (inc) include {server.url}/cfg/a line 2"
    )


def test_include_url_on_the_marker_line_and_comments(server: MockServer) -> None:
    raw = f"#include {server.url}/cfg/one\n# a comment\n\n{server.url}/cfg/two\n".encode()
    result = process(raw, limits=FAST)
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["two"]}
    assert len(result.parts) == 2


def test_404_is_reported_and_the_rest_applies(server: MockServer) -> None:
    raw = _include(f"{server.url}/missing", f"{server.url}/cfg/ok")
    result = process(raw, limits=FAST)
    assert [(p.where, p.message) for p in result.problems] == [
        (f"user-data include {server.url}/missing", "include not fetched: HTTP 404 Not Found")
    ]
    assert result.cloud_config == {"runcmd": ["ok"]}


def test_redirects_are_followed_but_bounded(server: MockServer) -> None:
    result = process(_include(f"{server.url}/redirect", f"{server.url}/loop"), limits=FAST)
    assert result.cloud_config == {"runcmd": ["redirected"]}
    # A redirect back to a URL already visited is a loop at once, not after the cap.
    assert ["redirect loop" in p.message for p in result.problems] == [True]
    assert len(server.requests_to("/loop")) == 1


def test_unreachable_host_is_reported_quickly() -> None:
    start = time.monotonic()
    result = process(_include("http://127.0.0.1:9/nothing"), limits=FAST)
    assert time.monotonic() - start < 5
    assert result.parts == []
    assert ["connection failed" in p.message for p in result.problems] == [True]


def test_retries_on_5xx_are_bounded(server: MockServer) -> None:
    limits = Limits(include_timeout=1.0, include_retries=1, include_retry_delay=0.0)
    result = process(_include(f"{server.url}/flaky"), limits=limits)
    assert ["HTTP 503" in p.message and "2 attempts" in p.message for p in result.problems] == [
        True
    ]
    limits = Limits(include_timeout=1.0, include_retries=5, include_retry_delay=0.0)
    result = process(_include(f"{server.url}/flaky"), limits=limits)
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["third-time"]}


def test_slow_headers_time_out(server: MockServer) -> None:
    start = time.monotonic()
    result = process(_include(f"{server.url}/slow-headers"), limits=FAST)
    assert time.monotonic() - start < 2.5
    assert ["timed out" in p.message for p in result.problems] == [True]


def test_trickling_body_is_cut_at_the_deadline(server: MockServer) -> None:
    start = time.monotonic()
    result = process(_include(f"{server.url}/slow-body"), limits=FAST)
    elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    assert ["did not finish within 1 s" in p.message for p in result.problems] == [True]


def test_oversized_bodies_are_refused(server: MockServer) -> None:
    limits = Limits(max_total_bytes=1 << 20, include_timeout=5.0, include_retries=0)
    result = process(
        _include(
            f"{server.url}/big-declared", f"{server.url}/big-undeclared", f"{server.url}/cfg/small"
        ),
        limits=limits,
    )
    assert [p.where.rsplit("/", 1)[1] for p in result.problems] == [
        "big-declared",
        "big-undeclared",
    ]
    assert all("size budget" in p.message for p in result.problems)
    assert result.cloud_config == {"runcmd": ["small"]}


def test_gzip_bodies_are_inflated(server: MockServer) -> None:
    raw = multipart(
        P(_include(f"{server.url}/gzip")),
        P(_include(f"{server.url}/content-encoding")),
        P(b"#cloud-config\nmerge_how: 'dict(recurse_array)+list(prepend)'\nruncmd: [first]\n"),
    )
    result = process(raw, limits=FAST)
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["first", "encoded"]}
    assert [p.payload for p in result.parts[:2]] == [
        b"#cloud-config\nruncmd: [gzipped]\n",
        b"#cloud-config\nruncmd: [encoded]\n",
    ]


def test_included_mime_and_nested_includes(server: MockServer) -> None:
    result = process(_include(f"{server.url}/mime", f"{server.url}/nested"), limits=FAST)
    assert result.problems == []
    assert [p.source for p in result.parts] == [
        f"user-data include {server.url}/mime part 1 (m.sh)",
        f"user-data include {server.url}/mime part 2 (m.yaml)",
        f"user-data include {server.url}/nested include {server.url}/cfg/inner",
        f"user-data include {server.url}/nested include {server.url}/script",
    ]


def test_broken_include_body_names_url_and_line(server: MockServer) -> None:
    result = process(_include(f"{server.url}/broken-yaml", f"{server.url}/cfg/fine"), limits=FAST)
    assert [p.where for p in result.problems] == [
        f"user-data include {server.url}/broken-yaml line 3 column 1"
    ]
    assert result.cloud_config == {"runcmd": ["fine"]}


def test_include_loops_depth_and_count_are_bounded(server: MockServer) -> None:
    loop = process(_include(f"{server.url}/self"), limits=FAST)
    assert ["include loop" in p.message for p in loop.problems] == [True]
    before = len(server.requests_to("/deep/"))
    deep = process(_include(f"{server.url}/deep/0"), limits=FAST)
    assert len(server.requests_to("/deep/")) - before == 5
    assert ["nested deeper than 5" in p.message for p in deep.problems] == [True]
    many = process(
        _include(*(f"{server.url}/cfg/n{i}" for i in range(5))),
        limits=Limits(max_includes=3, include_timeout=1.0, include_retries=0),
    )
    assert len(many.parts) == 3
    assert ["more than 3 includes" in p.message for p in many.problems] == [True, True]


def test_only_http_urls(server: MockServer) -> None:
    result = process(_include("file:///etc/shadow", "ftp://127.0.0.1/x"), limits=FAST)
    assert result.parts == []
    assert all("only http://" in p.message for p in result.problems)
    assert len(result.problems) == 2


def test_include_once_is_cached_root_only_and_not_refetched(
    server: MockServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache" / "includes"
    raw = f"#include-once\n{server.url}/cfg/once\n".encode()
    before = len(server.requests_to("/cfg/once"))
    first = process(raw, limits=FAST, include_cache_dir=cache)
    assert first.problems == []
    assert first.cloud_config == {"runcmd": ["once"]}
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    files = list(cache.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    second = process(raw, limits=FAST, include_cache_dir=cache)
    assert second.cloud_config == {"runcmd": ["once"]}
    assert any("served from the cache" in n.message for n in second.notes)
    assert len(server.requests_to("/cfg/once")) - before == 1
    # Plain #include is fetched every time, even with a cache dir.
    plain = f"#include\n{server.url}/cfg/once\n".encode()
    process(plain, limits=FAST, include_cache_dir=cache)
    assert len(server.requests_to("/cfg/once")) - before == 2


def test_include_once_toggles_per_line_and_mime_type(server: MockServer, tmp_path: Path) -> None:
    raw = multipart(
        P(f"{server.url}/cfg/by-type\n".encode(), "text/x-include-once-url"),
        P(f"#include-once {server.url}/cfg/a\n#include {server.url}/cfg/b\n".encode()),
    )
    process(raw, limits=FAST, include_cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_include_once_without_cache_dir_just_fetches(server: MockServer) -> None:
    result = process(f"#include-once\n{server.url}/cfg/nocache\n".encode(), limits=FAST)
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["nocache"]}
