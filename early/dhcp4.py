"""A DHCPv4 client exchange on standard-library sockets: DISCOVER, OFFER, REQUEST, ACK.

Why our own: Debian bookworm's python3-pyroute2 (0.7.2) has netlink but no usable DHCP
client, and the exchange the initramfs needs is small: one lease, once, never renewed
(the real root's client takes over). pyroute2 stays the netlink layer.

How: a UDP socket bound to 0.0.0.0:68 on the interface (``SO_BINDTODEVICE``) with
``SO_BROADCAST``; requests go to 255.255.255.255:67 with the BOOTP broadcast flag set,
so servers broadcast their replies too (the link has no address yet to unicast to).
A random transaction id; replies with another xid, another hardware address or not a
BOOTREPLY are ignored. Replies arrive through the IP stack, so reverse-path filtering
(``rp_filter``, off by default and in an initramfs) must be off: the timeout error says
when it is not. Retransmission backs off from 1 s to 4 s; the whole exchange,
retransmissions and one restart after a DHCPNAK included, never outlasts ``timeout``.
"""

from __future__ import annotations

import fcntl
import ipaddress
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bootseed.early.lease import Lease, StaticRoute

CLIENT_PORT = 68
SERVER_PORT = 67
BOOTREQUEST = 1
BOOTREPLY = 2
HTYPE_ETHER = 1
BROADCAST_FLAG = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
MIN_PACKET = 300  # BOOTP's minimum; some relays and servers drop shorter requests

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7

OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTERS = 3
OPT_DNS = 6
OPT_DOMAIN = 15
OPT_MTU = 26
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMETERS = 55
OPT_VENDOR_CLASS = 60
OPT_CLASSLESS_ROUTES = 121
OPT_END = 255
WANTED = bytes([OPT_SUBNET_MASK, OPT_ROUTERS, OPT_DNS, OPT_DOMAIN, OPT_MTU, OPT_LEASE_TIME,
                OPT_SERVER_ID, OPT_CLASSLESS_ROUTES])

FIRST_RETRANSMIT_S = 1.0
MAX_RETRANSMIT_S = 4.0
SIOCGIFHWADDR = 0x8927
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


class DhcpError(OSError):
    """The exchange failed for a reason other than silence (that is a TimeoutError)."""


@dataclass
class Message:
    """One BOOTP/DHCP packet; ``options`` maps a code to its (concatenated) value."""

    op: int
    xid: int
    chaddr: bytes
    options: dict[int, bytes] = field(default_factory=dict)
    flags: int = 0
    secs: int = 0
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"

    @property
    def message_type(self) -> int | None:
        value = self.options.get(OPT_MESSAGE_TYPE)
        return value[0] if value and len(value) == 1 else None

    def address_option(self, code: int) -> str | None:
        value = self.options.get(code)
        return socket.inet_ntoa(value[:4]) if value and len(value) >= 4 else None


def encode(message: Message) -> bytes:
    header = HEADER.pack(message.op, HTYPE_ETHER, len(message.chaddr), 0, message.xid,
                         message.secs, message.flags, socket.inet_aton(message.ciaddr),
                         socket.inet_aton(message.yiaddr), socket.inet_aton(message.siaddr),
                         socket.inet_aton(message.giaddr), message.chaddr, b"", b"")
    body = bytearray(MAGIC_COOKIE)
    for code, value in message.options.items():
        # Longer values are split over repeated options (RFC 3396).
        for start in range(0, max(len(value), 1), 255):
            chunk = value[start:start + 255]
            body += bytes([code, len(chunk)]) + chunk
    body.append(OPT_END)
    packet = header + bytes(body)
    return packet + bytes(max(0, MIN_PACKET - len(packet)))


def decode(data: bytes) -> Message:
    """Parse a packet; ValueError when it is not a well-formed DHCP message."""
    if len(data) < HEADER.size + len(MAGIC_COOKIE):
        raise ValueError(f"DHCP packet too short ({len(data)} bytes)")
    (op, _htype, hlen, _hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
     _sname, _file) = HEADER.unpack_from(data)
    if data[HEADER.size:HEADER.size + 4] != MAGIC_COOKIE:
        raise ValueError("no DHCP magic cookie")
    if hlen > 16:
        raise ValueError(f"hardware address length {hlen}")
    options: dict[int, bytes] = {}
    at = HEADER.size + 4
    while at < len(data):
        code = data[at]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            at += 1
            continue
        if at + 2 > len(data) or at + 2 + data[at + 1] > len(data):
            raise ValueError(f"option {code} runs past the end of the packet")
        length = data[at + 1]
        options[code] = options.get(code, b"") + data[at + 2:at + 2 + length]
        at += 2 + length
    return Message(op=op, xid=xid, chaddr=chaddr[:hlen], options=options, flags=flags,
                   secs=secs, ciaddr=socket.inet_ntoa(ciaddr), yiaddr=socket.inet_ntoa(yiaddr),
                   siaddr=socket.inet_ntoa(siaddr), giaddr=socket.inet_ntoa(giaddr))


def classless_routes(value: bytes) -> list[StaticRoute]:
    """Option 121 (RFC 3442): width, the significant octets of the destination, router."""
    routes: list[StaticRoute] = []
    at = 0
    while at < len(value):
        width = value[at]
        if width > 32:
            raise ValueError(f"option 121: prefix width {width}")
        octets = (width + 7) // 8
        end = at + 1 + octets + 4
        if end > len(value):
            raise ValueError("option 121: truncated route")
        destination = value[at + 1:at + 1 + octets].ljust(4, b"\0")
        network = ipaddress.IPv4Network((destination, width), strict=False)
        routes.append(StaticRoute(str(network), socket.inet_ntoa(value[end - 4:end])))
        at = end
    return routes


def lease_from_ack(ack: Message) -> Lease:
    def addresses(code: int) -> list[str]:
        value = ack.options.get(code, b"")
        return [socket.inet_ntoa(value[i:i + 4]) for i in range(0, len(value) - 3, 4)]

    def number(code: int, fmt: str) -> int | None:
        value = ack.options.get(code)
        size = struct.calcsize(fmt)
        return int(struct.unpack(fmt, value[:size])[0]) if value and len(value) >= size else None

    mask = ack.address_option(OPT_SUBNET_MASK)
    try:
        routes = classless_routes(ack.options.get(OPT_CLASSLESS_ROUTES, b""))
    except ValueError:
        # Only exposed, never installed: a server's garbled extra must not cost the lease.
        routes = []
    routers = addresses(OPT_ROUTERS)
    default = next((r.gateway for r in routes if r.destination == "0.0.0.0/0"), None)
    domain = ack.options.get(OPT_DOMAIN, b"").rstrip(b"\0").decode("ascii", "replace")
    return Lease(address=ack.yiaddr,
                 prefixlen=ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen if mask else 32,
                 gateway=routers[0] if routers else default, dns=addresses(OPT_DNS),
                 server=ack.address_option(OPT_SERVER_ID), lease_time=number(OPT_LEASE_TIME, "!I"),
                 domain=domain or None, mtu=number(OPT_MTU, "!H"), routes=routes)


def hardware_address(ifname: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        got = fcntl.ioctl(sock, SIOCGIFHWADDR, struct.pack("16s16x", ifname.encode()[:15]))
    return got[18:24]


class _Client:
    def __init__(self, ifname: str, sock: socket.socket, mac: bytes, deadline: float,
                 clock: Callable[[], float]) -> None:
        self.ifname = ifname
        self.sock = sock
        self.mac = mac
        self.deadline = deadline
        self.clock = clock
        self.started = clock()

    def request(self, xid: int, options: dict[int, bytes]) -> bytes:
        secs = min(int(self.clock() - self.started), 0xFFFF)
        return encode(Message(op=BOOTREQUEST, xid=xid, chaddr=self.mac, flags=BROADCAST_FLAG,
                              secs=secs, options=options))

    def transact(self, packet: bytes, xid: int,
                 accept: Callable[[Message], bool]) -> Message | None:
        """Send ``packet`` until an acceptable reply comes or the deadline passes."""
        interval = FIRST_RETRANSMIT_S
        while (now := self.clock()) < self.deadline:
            try:
                self.sock.sendto(packet, ("255.255.255.255", SERVER_PORT))
            except OSError as exc:
                raise DhcpError(f"cannot send DHCP on {self.ifname}: {exc.strerror}") from None
            resend_at = min(now + interval, self.deadline)
            interval = min(interval * 2, MAX_RETRANSMIT_S)
            while (left := resend_at - self.clock()) > 0:
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(4096)
                except TimeoutError:
                    break
                except OSError as exc:
                    raise DhcpError(f"cannot receive DHCP on {self.ifname}: "
                                    f"{exc.strerror or exc}") from None
                try:
                    reply = decode(data)
                except ValueError:
                    continue
                if reply.op == BOOTREPLY and reply.xid == xid and reply.chaddr == self.mac \
                        and accept(reply):
                    return reply
        return None


def _is_offer(message: Message) -> bool:
    return (message.message_type == OFFER and message.yiaddr != "0.0.0.0"
            and message.address_option(OPT_SERVER_ID) is not None)


def _answer_from(server: str) -> Callable[[Message], bool]:
    """The chosen server's ACK (with an address) or NAK; other servers' are not ours."""
    def accept(message: Message) -> bool:
        if message.address_option(OPT_SERVER_ID) not in (None, server):
            return False
        return message.message_type == NAK or (
            message.message_type == ACK and message.yiaddr != "0.0.0.0")

    return accept


def exchange(ifname: str, timeout: float, vendor_class: str = "bootseed",
             clock: Callable[[], float] = time.monotonic) -> Lease:
    """Obtain a lease on ``ifname`` (link up, no address needed) within ``timeout`` s.

    Raises TimeoutError when no lease came in time, DhcpError when servers refused
    twice (one DHCPNAK restarts the exchange) or the socket failed."""
    deadline = clock() + timeout
    try:
        mac = hardware_address(ifname)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError as exc:
        raise DhcpError(f"DHCP on {ifname}: {exc.strerror or exc}") from None
    with sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode() + b"\0")
            sock.bind(("0.0.0.0", CLIENT_PORT))
        except OSError as exc:
            raise DhcpError(f"cannot listen for DHCP on {ifname} port {CLIENT_PORT}: "
                            f"{exc.strerror or exc}") from None
        client = _Client(ifname, sock, mac, deadline, clock)
        common = {OPT_PARAMETERS: WANTED, OPT_VENDOR_CLASS: vendor_class.encode()}
        for _attempt in range(2):
            xid = random.getrandbits(32)
            discover = client.request(xid, {OPT_MESSAGE_TYPE: bytes([DISCOVER]), **common})
            offer = client.transact(discover, xid, _is_offer)
            if offer is None:
                break
            server = offer.address_option(OPT_SERVER_ID)
            assert server is not None
            options = {OPT_MESSAGE_TYPE: bytes([REQUEST]),
                       OPT_REQUESTED_IP: socket.inet_aton(offer.yiaddr),
                       OPT_SERVER_ID: socket.inet_aton(server), **common}
            reply = client.transact(client.request(xid, options), xid, _answer_from(server))
            if reply is None:
                break
            if reply.message_type == ACK:
                return lease_from_ack(reply)
        else:
            raise DhcpError(f"DHCP server {server} refused the lease on {ifname} "
                            "(DHCPNAK) twice")
        raise TimeoutError(f"no DHCP lease on {ifname} within {timeout:g} s"
                           f"{_rp_filter_note(ifname)}")


def _rp_filter_note(ifname: str, proc_sys: str = "/proc/sys/net/ipv4/conf") -> str:
    """Reverse-path filtering drops a server's broadcast reply while the link has no
    address (there is no route back to the server yet), so silence may be this. The
    kernel's default is off and an initramfs applies no sysctl.d; say so when it is on."""
    values = []
    for name in ("all", ifname):
        try:
            values.append(int(Path(proc_sys, name, "rp_filter").read_text(encoding="ascii")))
        except (OSError, ValueError):
            continue
    if max(values, default=0) == 0:
        return ""
    return f" (rp_filter is {max(values)} on {ifname}: it drops replies to a link without address)"
