from __future__ import annotations

import socket
from pathlib import Path

from bootseed.late.netwait import network_state, wait_for_network
from bootseed.late.sdnotify import notify

ROUTE_HEADER = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"


def test_notify_sends_one_datagram(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        assert notify("READY=1", str(path))
        assert server.recv(4096) == b"READY=1"


def test_notify_abstract_socket() -> None:
    name = f"bootseed-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        assert notify("READY=1", "@" + name)
        assert server.recv(4096) == b"READY=1"


def test_notify_without_socket_is_false(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    assert notify("READY=1", str(tmp_path / "absent.sock")) is False


def _proc(tmp_path: Path, route: str, ipv6_route: str = "", if_inet6: str = "") -> Path:
    net = tmp_path / "net"
    net.mkdir(parents=True)
    (net / "route").write_text(ROUTE_HEADER + route)
    (net / "ipv6_route").write_text(ipv6_route)
    (net / "if_inet6").write_text(if_inet6)
    return tmp_path


def test_ipv4_default_route_with_address(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "eth0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
                           "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    state = network_state(proc, address_of={"eth0": "10.0.2.15"}.get)
    assert state.up and "eth0" in state.detail
    down = network_state(proc, address_of=lambda _i: None)
    assert not down.up


def test_ipv6_default_route_with_global_address(tmp_path: Path) -> None:
    zero = "0" * 32
    route6 = f"{zero} 00 {zero} 00 fd000000000000000000000000000001 00000400 1 0 00000003 eth1\n"
    inet6 = ("fd000000000000000000000000000005 03 40 00 80     eth1\n"
             "fe800000000000000000000000000005 03 40 20 80     eth1\n")
    proc = _proc(tmp_path, "", route6, inet6)
    assert network_state(proc, address_of=lambda _i: None).up
    only_link_local = _proc(tmp_path / "b", "", route6, inet6.splitlines()[1] + "\n")
    assert not network_state(only_link_local, address_of=lambda _i: None).up


def test_wait_is_bounded(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "")
    result = wait_for_network(0.3, proc, interval=0.05)
    assert not result.up and 0.3 <= result.waited < 2.0
