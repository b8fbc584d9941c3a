"""bootseed.early.dhcp4 and bootseed.early.ra: the packet format against byte strings
built here, and the exchange for real in a network namespace (dnsmasq, and a DHCP
server written here for DHCPNAK and stray replies), with the venv's pyroute2 and with
Debian's python3-pyroute2 0.7.2 under ``/usr/bin/python3 -I`` as in the initramfs."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.early import dhcp4, ra
from bootseed.early.lease import StaticRoute

from tests.early.test_net_lab import SERVER_IP, SUBNET, NetnsPair, needs_netns, netns_lab
from testsupport.initramfstree import stage_path_tree

DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PYROUTE2 = Path("/usr/lib/python3/dist-packages/pyroute2")
debian_pyroute2 = pytest.mark.skipif(
    not DEBIAN_PYROUTE2.is_dir(), reason="Debian's python3-pyroute2 is not installed")

MAC = bytes.fromhex("525400c0ffee")
COOKIE = bytes([99, 130, 83, 99])


def bootp_header(op: int, xid: int, yiaddr: bytes, chaddr: bytes = MAC,
                 flags: int = 0x8000) -> bytes:
    return (bytes([op, 1, len(chaddr), 0]) + xid.to_bytes(4, "big") + b"\0\0"
            + flags.to_bytes(2, "big") + bytes(4) + yiaddr + bytes(8)
            + chaddr.ljust(16, b"\0") + bytes(64 + 128))


ACK_OPTIONS = (
    b"\x35\x01\x05"                                   # 53: DHCPACK
    b"\x01\x04\xff\xff\xff\x00"                       # 1: 255.255.255.0
    b"\x00\x00"                                       # pad
    b"\x03\x04\x0a\x00\x00\x01"                       # 3: router 10.0.0.1
    b"\x06\x08\x0a\x00\x00\x35\x0a\x00\x00\x36"       # 6: 10.0.0.53, 10.0.0.54
    b"\x0f\x0blab.example"                            # 15: domain
    b"\x1a\x02\x05\x78"                               # 26: MTU 1400
    b"\x33\x04\x00\x00\x0e\x10"                       # 51: 3600 s
    b"\x36\x04\x0a\x00\x00\x02"                       # 54: server 10.0.0.2
    # 121: 192.168.5.0/24 via 10.0.0.9, 0.0.0.0/0 via 10.0.0.1, 10.9.8.7/32 via 10.0.0.2
    b"\x79\x16\x18\xc0\xa8\x05\x0a\x00\x00\x09\x00\x0a\x00\x00\x01"
    b"\x20\x0a\x09\x08\x07\x0a\x00\x00\x02"
    b"\xff"
)


def test_decode_reads_header_and_every_option_into_a_lease() -> None:
    packet = bootp_header(2, 0xDEADBEEF, bytes([10, 0, 0, 77])) + COOKIE + ACK_OPTIONS + bytes(40)
    message = dhcp4.decode(packet)
    assert (message.op, message.xid, message.chaddr) == (2, 0xDEADBEEF, MAC)
    assert message.message_type == dhcp4.ACK and message.flags == 0x8000
    lease = dhcp4.lease_from_ack(message)
    assert lease.cidr == "10.0.0.77/24" and lease.gateway == "10.0.0.1"
    assert lease.dns == ["10.0.0.53", "10.0.0.54"] and lease.domain == "lab.example"
    assert (lease.mtu, lease.lease_time, lease.server) == (1400, 3600, "10.0.0.2")
    assert lease.routes == [StaticRoute("192.168.5.0/24", "10.0.0.9"),
                            StaticRoute("0.0.0.0/0", "10.0.0.1"),
                            StaticRoute("10.9.8.7/32", "10.0.0.2")]
    assert not lease.applied


def test_classless_default_route_is_the_gateway_without_option_3() -> None:
    options = b"\x35\x01\x05\x79\x05\x00\x0a\x00\x00\x07\xff"
    lease = dhcp4.lease_from_ack(dhcp4.decode(
        bootp_header(2, 1, bytes([10, 0, 0, 8])) + COOKIE + options))
    assert lease.gateway == "10.0.0.7" and lease.prefixlen == 32 and lease.dns == []


def test_a_malformed_option_121_does_not_cost_the_lease() -> None:
    options = b"\x35\x01\x05\x03\x04\x0a\x00\x00\x01\x79\x02\x21\x0a\xff"
    lease = dhcp4.lease_from_ack(dhcp4.decode(
        bootp_header(2, 1, bytes([10, 0, 0, 8])) + COOKIE + options))
    assert lease.address == "10.0.0.8" and lease.gateway == "10.0.0.1" and lease.routes == []


def test_classless_routes_reject_bad_widths_and_truncation() -> None:
    with pytest.raises(ValueError, match="width 33"):
        dhcp4.classless_routes(b"\x21\x0a\x00\x00\x00\x00\x0a\x00\x00\x01")
    with pytest.raises(ValueError, match="truncated"):
        dhcp4.classless_routes(b"\x18\xc0\xa8\x05\x0a\x00")


def test_encode_discover_is_a_broadcast_bootrequest() -> None:
    message = dhcp4.Message(op=1, xid=0x01020304, chaddr=MAC, flags=0x8000, secs=3,
                            options={53: b"\x01", 55: bytes([1, 3, 121])})
    packet = dhcp4.encode(message)
    assert len(packet) == 300  # padded to BOOTP's minimum
    assert packet[:4] == b"\x01\x01\x06\x00"
    assert packet[4:8] == b"\x01\x02\x03\x04" and packet[8:10] == b"\x00\x03"
    assert packet[10:12] == b"\x80\x00" and packet[12:28] == bytes(16)
    assert packet[28:34] == MAC and packet[34:44] == bytes(10)
    assert packet[236:240] == COOKIE
    assert packet[240:251] == b"\x35\x01\x01\x37\x03\x01\x03\x79\xff\x00\x00"


def test_long_options_are_split_and_joined_again() -> None:
    value = bytes(range(256)) * 2  # 512 bytes: three option instances on the wire
    packet = dhcp4.encode(dhcp4.Message(op=1, xid=7, chaddr=MAC, options={121: value}))
    assert packet[240:242] == b"\x79\xff" and packet[497:499] == b"\x79\xff"
    assert packet[754:756] == b"\x79\x02"
    assert dhcp4.decode(packet).options[121] == value


@pytest.mark.parametrize(("packet", "error"), [
    (b"\x02" * 100, "too short"),
    (bootp_header(2, 1, bytes(4)) + b"\x00\x00\x00\x00\xff", "magic cookie"),
    (bootp_header(2, 1, bytes(4)) + COOKIE + b"\x35\x05\x05", "runs past the end"),
])
def test_decode_rejects_malformed_packets(packet: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        dhcp4.decode(packet)


# --- router advertisement results, read from /proc/net files ---------------------------



def write_proc(directory: Path, addresses: list[str], routes: list[str]) -> None:
    (directory / "if_inet6").write_text("".join(f"{line}\n" for line in addresses))
    (directory / "ipv6_route").write_text("".join(f"{line}\n" for line in routes))


LINK_LOCAL = "fe800000000000005054fffffec0ffee 02 40 20 80     eth0"
TENTATIVE = "fd000ec2000000005054fffffec0ffee 02 40 00 40     eth0"
GLOBAL = "fd000ec2000000005054fffffec0ffee 02 40 00 00     eth0"
OTHER_LINK = "fd000ec2000000009999fffffec0ffee 03 40 00 00     eth1"
DEFAULT_ROUTE = ("00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                 "fe800000000000000000000000000001 00000400 00000001 00000000 00450003 eth0")
PREFIX_ROUTE = ("fd000ec2000000000000000000000000 40 00000000000000000000000000000000 00 "
                "00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0")


def test_router_config_needs_a_settled_global_address_and_a_default_route(
        tmp_path: Path) -> None:
    write_proc(tmp_path, [LINK_LOCAL, TENTATIVE, OTHER_LINK], [PREFIX_ROUTE])
    assert ra.global_addresses("eth0", str(tmp_path)) == []
    assert ra.default_router("eth0", str(tmp_path)) is None
    with pytest.raises(TimeoutError, match=r"on eth0 within 0.1 s \(no global address\)"):
        ra.wait_for_router("eth0", 0.1, str(tmp_path))
    write_proc(tmp_path, [LINK_LOCAL, GLOBAL], [PREFIX_ROUTE, DEFAULT_ROUTE])
    got = ra.wait_for_router("eth0", 0.1, str(tmp_path))
    assert got == ra.RouterConfig(address="fd00:ec2::5054:ffff:fec0:ffee/64", router="fe80::1")
    assert ra.default_router("eth1", str(tmp_path)) is None


def test_no_ipv6_in_the_kernel_is_said(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no IPv6 in this kernel for eth0"):
        ra.wait_for_router("eth0", 1, str(tmp_path))


# --- the exchange for real -------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A path entry holding bootseed/early and bootseed/contract, for an interpreter
    that does not see the venv's editable install (as in the initramfs)."""
    return stage_path_tree(tmp_path_factory.mktemp("pathtree"))


@pytest.fixture
def pair() -> Iterator[NetnsPair]:
    with netns_lab() as made:
        yield made


CLIENT = r"""
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
opts = json.loads(sys.argv[2])
import subprocess, time
from dataclasses import asdict
from importlib import metadata
from bootseed.early import net, dhcp4
backend = net.make_backend("pyroute2")
out = {"pyroute2": metadata.version("pyroute2"), "python": sys.executable}
if opts["what"] == "exchange":
    backend.link_up("eth0")
    started = time.monotonic()
    try:
        out["lease"] = asdict(dhcp4.exchange("eth0", opts["timeout"]))
    except OSError as exc:
        out["error"], out["kind"] = str(exc), type(exc).__name__
    out["elapsed"] = time.monotonic() - started
else:
    request = net.NetRequest(carrier_timeout=3, dhcp_timeout=opts["dhcp_timeout"],
                             ra_timeout=opts.get("ra_timeout", net.DEFAULT_RA_TIMEOUT))
    try:
        state = net.bring_up(request, backend)
        out["error"] = None
    except net.NetworkError as exc:
        state, out["error"] = exc.state, str(exc)
    out["state"] = state.as_dict()
    for family in ("-4", "-6"):
        out["addr" + family] = json.loads(subprocess.run(
            ["ip", "-j", family, "addr", "show", "dev", "eth0"], capture_output=True,
            text=True).stdout)
        out["route" + family] = json.loads(subprocess.run(
            ["ip", "-j", family, "route"], capture_output=True, text=True).stdout)
    if opts.get("fetch"):
        import urllib.request
        with urllib.request.urlopen(opts["fetch"], timeout=5) as reply:
            out["fetched"] = reply.read().decode()
    out["teardown"] = net.tear_down(state, backend)
print(json.dumps(out))
"""

INTERPRETERS = [
    pytest.param("venv", id="venv-pyroute2"),
    pytest.param("debian", id="debian-pyroute2-0.7.2", marks=debian_pyroute2),
]


def run_client(pair: NetnsPair, interpreter: str, tree: Path, **opts: object) -> dict[str, object]:
    if interpreter == "debian":
        argv, path = [DEBIAN_PYTHON, "-I"], [str(tree)]
    else:
        argv, path = [sys.executable], []
    result = pair.run_client([*argv, "-c", CLIENT, json.dumps(path), json.dumps(opts)])
    assert result.returncode == 0, result.stderr
    doc = dict(json.loads(result.stdout.splitlines()[-1]))
    if interpreter == "debian":
        assert doc["pyroute2"] == "0.7.2" and doc["python"] == DEBIAN_PYTHON
    return doc


def addresses(doc: object) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    assert isinstance(doc, list)
    return [ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}") for link in doc
            for a in link.get("addr_info", [])]




@needs_netns
@pytest.mark.root
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_bring_up_leases_from_dnsmasq_and_tears_down(pair: NetnsPair, interpreter: str,
                                                     tree: Path) -> None:
    pair.start_dhcp()
    doc = run_client(pair, interpreter, tree, what="bring_up", dhcp_timeout=10)
    assert doc["error"] is None, doc
    state = doc["state"]
    assert isinstance(state, dict)
    assert (state["backend"], state["method"], state["interface"]) == ("pyroute2", "dhcp", "eth0")
    leased = ipaddress.ip_interface(state["address"])
    assert leased.network == ipaddress.ip_network(f"{SUBNET}.0/24")
    assert state["gateway"] == SERVER_IP and state["dns"] == [SERVER_IP]
    assert addresses(doc["addr-4"]) == [leased]
    assert any(r.get("dst") == "default" and r.get("gateway") == SERVER_IP
               for r in doc["route-4"])  # type: ignore[attr-defined]
    assert pair.client_addresses() == [] and not pair.client_link_up()
    log = pair.dhcp_log()
    assert "DHCPACK" in log and "vendor class: bootseed" in log


@needs_netns
@pytest.mark.root
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_exchange_without_a_server_ends_within_its_bound(pair: NetnsPair, interpreter: str,
                                                         tree: Path) -> None:
    doc = run_client(pair, interpreter, tree, what="exchange", timeout=2)
    assert doc["kind"] == "TimeoutError" and doc["error"] == "no DHCP lease on eth0 within 2 s"
    elapsed = doc["elapsed"]
    assert isinstance(elapsed, float) and 2.0 <= elapsed < 2.5


@needs_netns
@pytest.mark.root
def test_silence_under_strict_reverse_path_filtering_is_explained(pair: NetnsPair,
                                                                  tree: Path) -> None:
    # The known limit of receiving through the IP stack: with rp_filter on, the kernel
    # drops the server's reply to a link without an address. The error says so.
    pair.start_dhcp()
    subprocess.run(["ip", "netns", "exec", pair.client, "sysctl", "-q", "-w",
                    "net.ipv4.conf.all.rp_filter=1"], check=True)
    doc = run_client(pair, "venv", tree, what="exchange", timeout=2)
    assert doc["error"] == ("no DHCP lease on eth0 within 2 s (rp_filter is 1 on eth0: it "
                            "drops replies to a link without address)")
    assert "DHCPOFFER" in pair.dhcp_log()


SERVER = r"""
import socket, struct, sys
mode, server_ip = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, 25, b"srv0\0")
sock.bind(("0.0.0.0", 67))
print("ready", flush=True)
sid = socket.inet_aton(server_ip)
requests = 0

def reply(op, xid, chaddr, yiaddr, kind):
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), socket.inet_aton(yiaddr), bytes(4), bytes(4), chaddr,
                         b"", b"")
    options = bytes([53, 1, kind, 54, 4]) + sid
    if kind != 6:
        options += bytes([1, 4, 255, 255, 255, 0, 51, 4, 0, 0, 14, 16, 3, 4]) + sid
        options += bytes([121, 7, 16, 10, 9, 10, 231, 7, 1])
    sock.sendto(header + b"\x63\x82\x53\x63" + options + b"\xff",
                ("255.255.255.255", 68))

while True:
    data = sock.recv(4096)
    xid, chaddr = struct.unpack_from("!I", data, 4)[0], data[28:44]
    kind = data[242]  # option 53 comes first in the client's requests
    print({1: "DISCOVER", 3: "REQUEST"}.get(kind, kind), hex(xid), flush=True)
    # Stray replies first: another xid, another client, a BOOTREQUEST. Each offers
    # .66, which the client must never take.
    wrong_mac = bytes([chaddr[0] ^ 1]) + chaddr[1:]
    reply(2, xid ^ 1, chaddr, "10.231.7.66", 2 if kind == 1 else 5)
    reply(2, xid, wrong_mac, "10.231.7.66", 2 if kind == 1 else 5)
    reply(1, xid, chaddr, "10.231.7.66", 2 if kind == 1 else 5)
    if kind == 1:
        reply(2, xid, chaddr, "10.231.7.60", 2)
    elif kind == 3:
        requests += 1
        nak = mode == "nak-always" or requests == 1
        reply(2, xid, chaddr, "0.0.0.0" if nak else "10.231.7.60", 6 if nak else 5)
"""


def start_test_server(pair: NetnsPair, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", pair.server, sys.executable, "-c", SERVER,
                             mode, SERVER_IP], stdout=subprocess.PIPE, text=True)
    pair._procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def server_log(proc: subprocess.Popen[str]) -> list[str]:
    proc.kill()
    out, _ = proc.communicate(timeout=10)
    return out.splitlines()


def without_retransmissions(log: list[str]) -> list[tuple[str, str]]:
    """(message kind, xid) per logged message, a retransmission (the same kind and xid
    again) folded into the first: on a loaded machine the server's answer can come after
    the client's first resend, which is the protocol working, not a second exchange."""
    messages: list[tuple[str, str]] = []
    for line in log:
        kind, xid = line.split()[:2]
        if not messages or messages[-1] != (kind, xid):
            messages.append((kind, xid))
    return messages


@needs_netns
@pytest.mark.root
def test_one_nak_restarts_the_exchange_and_stray_replies_are_ignored(
        pair: NetnsPair, tree: Path) -> None:
    server = start_test_server(pair, "nak-once")
    doc = run_client(pair, "venv", tree, what="exchange", timeout=10)
    log = server_log(server)
    lease = doc.get("lease")
    assert isinstance(lease, dict), doc
    assert (lease["address"], lease["prefixlen"], lease["gateway"]) == ("10.231.7.60", 24,
                                                                         SERVER_IP)
    assert lease["routes"] == [{"destination": "10.9.0.0/16", "gateway": SERVER_IP}]
    assert lease["lease_time"] == 3600 and lease["server"] == SERVER_IP
    messages = without_retransmissions(log)
    assert [kind for kind, _ in messages] == ["DISCOVER", "REQUEST", "DISCOVER", "REQUEST"]
    # The restart is a new transaction.
    xids = [xid for _, xid in messages]
    assert xids[0] == xids[1] != xids[2] == xids[3]


@needs_netns
@pytest.mark.root
def test_second_nak_fails_naming_server_and_interface(pair: NetnsPair, tree: Path) -> None:
    server = start_test_server(pair, "nak-always")
    doc = run_client(pair, "venv", tree, what="exchange", timeout=10)
    log = server_log(server)
    assert doc["kind"] == "DhcpError"
    assert doc["error"] == f"DHCP server {SERVER_IP} refused the lease on eth0 (DHCPNAK) twice"
    messages = without_retransmissions(log)
    assert [kind for kind, _ in messages] == ["DISCOVER", "REQUEST"] * 2


EC2_V6 = "fd00:ec2::254"


def start_ra_only(pair: NetnsPair, web_root: Path) -> None:
    """dnsmasq sending router advertisements for fd00:ec2::/64 (no DHCPv4 range), and a
    web server on fd00:ec2::254, the address of EC2's IPv6 metadata endpoint."""
    subprocess.run(["ip", "netns", "exec", pair.server, "sysctl", "-q", "-w",
                    "net.ipv6.conf.srv0.accept_dad=0"], check=True)
    subprocess.run(["ip", "-n", pair.server, "addr", "add", f"{EC2_V6}/64", "dev", "srv0",
                    "nodad"], check=True)
    dnsmasq = subprocess.Popen(
        ["ip", "netns", "exec", pair.server, "dnsmasq", "--keep-in-foreground",
         "--conf-file=/dev/null", "--interface=srv0", "--bind-interfaces", "--port=0",
         "--enable-ra", "--dhcp-range=fd00:ec2::,ra-only,64,1h", "--leasefile-ro",
         "--log-dhcp", "--log-facility=-"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    pair._procs.append(dnsmasq)
    web = subprocess.Popen(
        ["ip", "netns", "exec", pair.server, sys.executable, "-m", "http.server", "--bind",
         EC2_V6, "--directory", str(web_root), "8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pair._procs.append(web)  # type: ignore[arg-type]
    time.sleep(0.5)
    assert dnsmasq.poll() is None and web.poll() is None


@needs_netns
@pytest.mark.root
@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_ipv6_only_subnet_comes_up_by_router_advertisement(
        pair: NetnsPair, interpreter: str, tree: Path, tmp_path: Path) -> None:
    (tmp_path / "instance-id").write_text("i-v6only")
    start_ra_only(pair, tmp_path)
    doc = run_client(pair, interpreter, tree, what="bring_up", dhcp_timeout=2, ra_timeout=10,
                     fetch=f"http://[{EC2_V6}]:8080/instance-id")
    assert doc["error"] is None, doc
    state = doc["state"]
    assert isinstance(state, dict)
    assert state["method"] == "ra" and state["interface"] == "eth0"
    address = ipaddress.ip_interface(state["address"])
    assert address.network == ipaddress.ip_network("fd00:ec2::/64")
    assert address in addresses(doc["addr-6"])
    assert ipaddress.ip_address(state["gateway"]).is_link_local
    assert any(r.get("dst") == "default" and r.get("gateway") == state["gateway"]
               for r in doc["route-6"])  # type: ignore[attr-defined]
    assert addresses(doc["addr-4"]) == []
    assert doc["fetched"] == "i-v6only"
    assert doc["teardown"] == "eth0 down" and not pair.client_link_up()
    out = subprocess.run(["ip", "-n", pair.client, "-j", "-6", "addr", "show", "dev", "eth0",
                          "scope", "global"], capture_output=True, text=True, check=True)
    assert addresses(json.loads(out.stdout)) == []


@needs_netns
@pytest.mark.root
def test_neither_dhcp4_nor_ra_fails_saying_both(pair: NetnsPair, tree: Path) -> None:
    started = time.monotonic()
    doc = run_client(pair, "venv", tree, what="bring_up", dhcp_timeout=1, ra_timeout=1)
    assert time.monotonic() - started < 15
    assert doc["error"] == (
        "neither DHCPv4 nor IPv6 router advertisement on eth0: DHCPv4: no DHCP lease on eth0 "
        "within 1 s; RA: no IPv6 router advertisement on eth0 within 1 s (no global address)")
    assert not pair.client_link_up()
