"""The lab's guest network: QEMU user networking that reaches only our servers.

The guest gets ``-nic user,restrict=on`` (no route to the host or beyond)
with network ``169.252.0.0/14``, so that the EC2 metadata address
169.254.169.254 is inside it: QEMU only accepts ``guestfwd`` targets inside
the user network. The guest's own address (169.252.0.15) is outside
the link-local 169.254.0.0/16 on purpose, so DHCP clients treat it as an
ordinary lease, not an IPv4LL one. Every address of this network is
virtual, inside QEMU; none is ever on the wire.

In restricted mode QEMU's DHCP server offers no gateway, so the guest would
have no default route, which "is the network up" checks look for. Lab images
carry ``80-bootseed-lab.network`` (matched only with ``bootseed.lab=1`` on the
kernel command line): DHCP plus a default route bound to the NIC.

Each lab server (a :class:`~http.server.HTTPServer` on 127.0.0.1) is
reachable from the guest at one fixed address through a ``guestfwd`` rule
in its per-connection form: for every TCP connection the guest opens to that
address, QEMU runs ``socat STDIO TCP4:127.0.0.1:PORT``.
(The ``guestfwd=...-tcp:HOST:PORT`` form connects once at startup and
serves a single connection, which HTTP clients that reconnect cannot use.)

Nothing here ever sends a packet to a non-loopback address: the only
outbound traffic on the host is socat connecting to 127.0.0.1.

===================  =====================  =====================================
guest address        what                   host side
===================  =====================  =====================================
169.254.169.254:80   EC2 metadata mock      ``MockImds`` on 127.0.0.1:ephemeral
                     (or OpenStack's)       (``MockOpenStack``, one or the other)
169.254.100.1:80     NoCloud seed (HTTP)    ``StaticServer`` on 127.0.0.1:ephemeral
169.254.100.2:80     phone-home sink        ``PhoneHomeSink`` on 127.0.0.1:ephemeral
169.254.100.3:80     Debian repository      ``StaticServer`` (signed lab repo)
169.254.100.4:11371  OpenPGP keyserver      ``HkpKeyserver`` (HKP lookups)
169.254.100.5:3128   forward proxy          ``ForwardProxy`` (routes to the repo)
169.254.100.6:514    syslog receiver (TCP)  ``SyslogReceiver`` (RFC 3164/5424)
169.254.100.20:443   HTTPS, test's CA       a test's TLS server (``BootOptions.forwards``)
169.254.100.21:443   HTTPS, another CA      a test's TLS server (``BootOptions.forwards``)
169.254.100.30:8140  Puppet server          ``mocks.puppetserver`` (``BootOptions.forwards``)
169.254.100.31:80    git over HTTP          a test's ``StaticServer`` (``BootOptions.forwards``)
===================  =====================  =====================================

Extra NICs (``BootOptions.extra_nics``): NIC ``n`` (1, 2, ...) after the lab NIC is
``-nic user,restrict=on`` on a network of its own, ``10.<n>.0.0/24`` (QEMU's side at
``10.<n>.0.2``), MAC ``52:54:00:12:35:<n>``, IPv6 off, with no ``guestfwd`` and no
DHCP range the guest is meant to use: a seed's network configuration gives these
NICs static addresses, bonds, VLANs. Like the lab network, none of it leaves QEMU.

QEMU's ``guestfwd`` relays TCP only, so the guest reaches the syslog receiver over
TCP (``bootseed.syslog=tcp://169.254.100.6:514``); the UDP path is tested on the host.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass

GUEST_NET = "169.252.0.0/14"
GATEWAY = "169.252.0.2"
DNS = "169.252.0.3"
DHCP_START = "169.252.0.15"
IMDS_ADDR = "169.254.169.254"
SEED_ADDR = "169.254.100.1"
SINK_ADDR = "169.254.100.2"
REPO_ADDR = "169.254.100.3"
KEYSERVER_ADDR = "169.254.100.4"
PROXY_ADDR = "169.254.100.5"
# Services a boot test runs itself on the host (BootOptions.forwards): a Puppet
# server and a git repository over HTTP for the configuration-management modules.
PUPPET_ADDR = "169.254.100.30"
PUPPET_PORT = 8140
GIT_ADDR = "169.254.100.31"
HTTP_PORT = 80
HKP_PORT = 11371
PROXY_PORT = 3128


def seed_url() -> str:
    """The NoCloud ``s=`` URL the guest uses (trailing slash: files are appended)."""
    return f"http://{SEED_ADDR}/"


def sink_url(path: str = "/") -> str:
    return f"http://{SINK_ADDR}{path}"


@dataclass(frozen=True)
class GuestForward:
    """Guest ``ip:port`` -> host ``127.0.0.1:host_port``, one relay per connection."""

    guest_ip: str
    guest_port: int
    host_port: int

    def option(self, relay: str = "socat") -> str:
        if not 0 < self.host_port < 65536:
            raise ValueError(f"bad host port {self.host_port}")
        return (
            f"guestfwd=tcp:{self.guest_ip}:{self.guest_port}-"
            f"cmd:{relay} STDIO TCP4:127.0.0.1:{self.host_port}"
        )


def relay_program() -> str:
    path = shutil.which("socat")
    if path is None:
        raise RuntimeError("socat is not installed (scripts/bootstrap installs it)")
    return path


LAB_MAC = "52:54:00:12:34:56"
MAX_EXTRA_NICS = 8


def extra_nic_mac(number: int) -> str:
    """The MAC of extra NIC ``number`` (1 is the guest's second NIC)."""
    _check_extra_nic(number)
    return f"52:54:00:12:35:{number:02x}"


def extra_nic_net(number: int) -> str:
    """The restricted user network of extra NIC ``number``; QEMU's side is its ``.2``."""
    _check_extra_nic(number)
    return f"10.{number}.0.0/24"


def _check_extra_nic(number: int) -> None:
    if not 1 <= number <= MAX_EXTRA_NICS:
        raise ValueError(f"extra NIC {number}: the lab has extra NICs 1 to {MAX_EXTRA_NICS}")


def extra_nic_argument(number: int, model: str = "virtio-net-pci") -> str:
    """The ``-nic`` value of extra NIC ``number``: restricted, its own network, no relays."""
    return ",".join(["user", f"model={model}", f"mac={extra_nic_mac(number)}", "restrict=on",
                     "ipv6=off", f"net={extra_nic_net(number)}"])


def nic_argument(forwards: Sequence[GuestForward], relay: str = "socat",
                 model: str = "virtio-net-pci", mac: str = LAB_MAC,
                 ssh_forward_port: int | None = None) -> str:
    """The value of QEMU's ``-nic`` option for the lab network; ``ssh_forward_port``:
    the host's ``127.0.0.1:PORT`` reaches the guest's port 22 (``restrict=on`` still
    keeps the guest from opening connections out; host forwards are let in)."""
    parts = [
        "user",
        f"model={model}",
        f"mac={mac}",
        "restrict=on",
        "ipv6=off",
        f"net={GUEST_NET}",
        f"host={GATEWAY}",
        f"dns={DNS}",
        f"dhcpstart={DHCP_START}",
    ]
    parts += [fwd.option(relay) for fwd in forwards]
    if ssh_forward_port is not None:
        if not 0 < ssh_forward_port < 65536:
            raise ValueError(f"bad host port {ssh_forward_port}")
        parts.append(f"hostfwd=tcp:127.0.0.1:{ssh_forward_port}-:22")
    for part in parts:
        if "," in part:
            raise ValueError(f"a comma inside the -nic value {part!r} would split it")
    return ",".join(parts)


# HTTPS servers a test runs itself (BootOptions.forwards): one whose certificate
# the seed's CA signed, one signed by a CA the guest does not trust.
TLS_TRUSTED_ADDR = "169.254.100.20"
TLS_UNTRUSTED_ADDR = "169.254.100.21"
HTTPS_PORT = 443
SYSLOG_ADDR = "169.254.100.6"
SYSLOG_PORT = 514


def syslog_url() -> str:
    """The ``bootseed.syslog=`` value that reaches the lab's receiver (TCP: see above)."""
    return f"tcp://{SYSLOG_ADDR}:{SYSLOG_PORT}"
