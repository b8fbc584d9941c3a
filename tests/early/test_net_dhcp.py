"""bootseed.early.net for real: DHCP from dnsmasq and static ip= across a veth pair
between two namespaces the test made, with both backends, and the tear-down."""

from __future__ import annotations

import ipaddress
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.early.test_net_lab import SERVER_IP, SUBNET, NetnsPair, needs_netns, netns_lab

pytestmark = [needs_netns, pytest.mark.root]


@pytest.fixture
def netns_pair() -> Iterator[NetnsPair]:
    with netns_lab() as pair:
        yield pair

CLIENT = r"""
import json, sys
from bootseed.early import net
from bootseed.early.ipconfig import parse_ip
opts = json.loads(sys.argv[1])
backend = net.make_backend(opts["backend"])
request = net.NetRequest(ip=parse_ip(opts["ip"]) if opts.get("ip") else None,
                         carrier_timeout=3, dhcp_timeout=opts.get("dhcp_timeout", 10),
                         resolv_conf=opts.get("resolv_conf"))
try:
    state = net.bring_up(request, backend)
    error = None
except net.NetworkError as exc:
    state, error = exc.state, str(exc)
import subprocess
up = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True).stdout
route = subprocess.run(["ip", "-j", "route"], capture_output=True, text=True).stdout
teardown = net.tear_down(state, backend)
print(json.dumps({"state": state.as_dict(), "error": error, "addr_while_up": json.loads(up),
                  "routes_while_up": json.loads(route), "teardown": teardown}))
"""

klibc = pytest.mark.skipif(shutil.which("ipconfig") is None
                           and not Path("/usr/lib/klibc/bin/ipconfig").exists(),
                           reason="klibc-utils (ipconfig) not installed")


def run_client(pair: NetnsPair, **opts: object) -> dict[str, object]:
    result = pair.run_client([sys.executable, "-c", CLIENT, json.dumps(opts)],
                             mount_run=opts.get("backend") == "klibc-ipconfig")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


def addresses(doc: object) -> list[str]:
    assert isinstance(doc, list)
    return [f"{a['local']}/{a['prefixlen']}" for link in doc for a in link.get("addr_info", [])
            if a["local"] != "127.0.0.1"]


@pytest.mark.parametrize("backend", ["pyroute2", pytest.param("klibc-ipconfig", marks=klibc)])
def test_dhcp_brings_up_first_link_with_carrier_then_tears_down(
        netns_pair: NetnsPair, backend: str, tmp_path: Path) -> None:
    netns_pair.start_dhcp()
    resolv = tmp_path / "resolv.conf"
    doc = run_client(netns_pair, backend=backend, resolv_conf=str(resolv))
    assert doc["error"] is None
    state = doc["state"]
    assert isinstance(state, dict)
    assert state["interface"] == "eth0" and state["method"] == "dhcp"
    assert state["backend"] == backend
    leased = ipaddress.ip_interface(state["address"])
    assert leased.network == ipaddress.ip_network(f"{SUBNET}.0/24")
    assert state["gateway"] == SERVER_IP and state["dns"] == [SERVER_IP]
    assert addresses(doc["addr_while_up"]) == [state["address"]]
    assert any(r.get("dst") == "default" and r.get("gateway") == SERVER_IP
               for r in doc["routes_while_up"])  # type: ignore[union-attr]
    assert resolv.read_text() == f"nameserver {SERVER_IP}\n"
    # The real root starts from a clean link: address gone, link down.
    assert netns_pair.client_addresses() == []
    assert not netns_pair.client_link_up()
    assert "removed" in str(doc["teardown"])
    assert "DHCPACK" in netns_pair.dhcp_log()


@pytest.mark.parametrize("backend", ["pyroute2", pytest.param("klibc-ipconfig", marks=klibc)])
def test_static_ip_parameter_is_honoured_without_dhcp(netns_pair: NetnsPair,
                                                       backend: str) -> None:
    netns_pair.start_dhcp()
    doc = run_client(netns_pair, backend=backend,
                     ip=f"{SUBNET}.20::{SERVER_IP}:255.255.255.0::eth0:off:{SERVER_IP}")
    assert doc["error"] is None
    assert addresses(doc["addr_while_up"]) == [f"{SUBNET}.20/24"]
    assert any(r.get("dst") == "default" and r.get("gateway") == SERVER_IP
               for r in doc["routes_while_up"])  # type: ignore[union-attr]
    assert netns_pair.client_addresses() == []
    assert "DHCPDISCOVER" not in netns_pair.dhcp_log()


def test_no_dhcp_server_fails_within_the_bound(netns_pair: NetnsPair) -> None:
    started = time.monotonic()
    doc = run_client(netns_pair, backend="pyroute2", dhcp_timeout=2)
    elapsed = time.monotonic() - started
    assert "no DHCP lease on eth0 within 2 s" in str(doc["error"])
    # Then the bounded wait for IPv6 by router advertisement, which failed too.
    assert "no IPv6 router advertisement on eth0 within 3 s" in str(doc["error"])
    # Bounded: the 2 s DHCP wait plus interpreter start, far from hanging.
    assert elapsed < 30
    assert netns_pair.client_addresses() == []
    assert not netns_pair.client_link_up()


def test_no_carrier_is_reported(netns_pair: NetnsPair) -> None:
    # The server end stays down: the client link never sees carrier.
    import subprocess

    subprocess.run(["ip", "-n", netns_pair.server, "link", "set", "srv0", "down"], check=True)
    doc = run_client(netns_pair, backend="pyroute2")
    assert "no carrier on eth0 within 3 s" in str(doc["error"])
    assert not netns_pair.client_link_up()
