"""Every network read is bounded by a wall-clock deadline, whatever the server does.

The server drips the status line, the headers or the body a byte at a time,
or never answers; the early client, seed discovery and user-data includes must
each give up within their deadline (plus scheduling slack on a busy machine),
name the URL, and let the rest go on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from bootseed.early import http
from bootseed.early.budget import Budget
from bootseed.early.discover import DiscoveryConfig, discover
from bootseed.late.userdata.engine import process
from bootseed.late.userdata.types import Limits

from .hostile_http import HostileServer, hostile_server

# Generous slack: these bound a hang, they do not time a fast path.
SLACK = 2.5
SLOW_PATHS = ("silent", "slow-status", "slow-headers", "trickle")


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with hostile_server() as srv:
        yield srv


@pytest.mark.parametrize("path", SLOW_PATHS)
def test_one_request_ends_at_its_deadline(server: HostileServer, path: str) -> None:
    start = time.monotonic()
    with pytest.raises(http.FetchError) as caught:
        http.request(f"{server.url}/{path}", timeout=1.0)
    assert time.monotonic() - start < 1.0 + SLACK
    assert caught.value.kind == "timeout"
    assert path in str(caught.value)


@pytest.mark.parametrize("path", SLOW_PATHS)
def test_retries_stay_inside_the_budget(server: HostileServer, path: str) -> None:
    budget = Budget(3.0)
    start = time.monotonic()
    with pytest.raises(http.FetchError):
        http.fetch(f"{server.url}/{path}", budget=budget, timeout=1.0, attempts=10,
                   backoff=0.1)
    assert time.monotonic() - start < 3.0 + SLACK


def test_a_fast_answer_still_arrives(server: HostileServer) -> None:
    resp = http.request(f"{server.url}/ok", timeout=5.0)
    assert resp.status == 200 and resp.reason == "OK"
    assert resp.body.startswith(b"#cloud-config")


def test_seed_discovery_from_a_trickling_nocloud_url_keeps_its_budget(
    server: HostileServer,
) -> None:
    config = DiscoveryConfig(cmdline=f"ds=nocloud;s={server.url}/seed/trickle/",
                             scan_discs=False, seed_dirs=(), ec2_endpoints=[],
                             total_budget=4.0, dmi_dir="/nonexistent")
    start = time.monotonic()
    seed = discover(config)
    assert time.monotonic() - start < 4.0 + SLACK
    assert seed.source == "none"


def test_an_include_with_a_slow_status_line_times_out(server: HostileServer) -> None:
    limits = Limits(include_timeout=1.0, include_retries=0)
    for path in ("slow-status", "slow-headers"):
        start = time.monotonic()
        result = process(f"#include {server.url}/{path}\n".encode(), limits=limits)
        assert time.monotonic() - start < 1.0 + SLACK, path
        assert ["timed out" in p.message for p in result.problems] == [True]


def test_all_includes_of_a_run_share_one_time_budget(server: HostileServer) -> None:
    silent = [f"{server.url}/{n}/silent" for n in range(40)]
    raw = ("#include\n" + "\n".join(silent) + f"\n{server.url}/ok\n").encode()
    limits = Limits(include_timeout=1.0, include_retries=1, include_retry_delay=0.1,
                    include_total_timeout=3.0, max_includes=64)
    start = time.monotonic()
    result = process(raw, limits=limits)
    assert time.monotonic() - start < 3.0 + SLACK
    # Every URL is accounted for: the silent ones by a problem naming them.
    assert len(result.problems) == 41
    assert all("include" in p.where for p in result.problems)
    assert sum("time budget of 3 s is used up" in p.message for p in result.problems) >= 30
