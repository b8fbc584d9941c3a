"""A throw-away certificate authority and an HTTPS server on 127.0.0.1 for tests.

``TestCA("name").issue(ip)`` signs a server certificate for one IP address
(the address the client dials, e.g. a boot lab ``guestfwd`` address).
``TlsServer(cert)`` answers every GET with a short text and counts the TLS
handshakes that failed (a client that does not trust the CA aborts there).
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootseed.image_builder.mocks.httpbase import LoggingHandler, MockServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BODY = b"hello over TLS from the lab\n"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(days=1), now + datetime.timedelta(days=7)


@dataclass(frozen=True)
class ServerCert:
    cert_pem: bytes
    key_pem: bytes


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        start, end = _validity()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, ip: str) -> ServerCert:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = _validity()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(ip)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
                ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return ServerCert(
            cert.public_bytes(serialization.Encoding.PEM)
            + self.cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class _Handler(LoggingHandler):
    def do_GET(self) -> None:
        self.record()
        self.reply(200, BODY)


class TlsServer(MockServer):
    """HTTPS on 127.0.0.1:ephemeral; the handshake runs in the request's thread."""

    def __init__(self, cert: ServerCert) -> None:
        super().__init__(_Handler)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:
            chain, key = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
            chain.write_bytes(cert.cert_pem)
            key.write_bytes(cert.key_pem)
            self.context.load_cert_chain(chain, key)
        self.failed_handshakes = 0

    def finish_request(self, request: Any, client_address: Any) -> None:
        assert isinstance(request, socket.socket)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.failed_handshakes += 1
            return
        super().finish_request(tls, client_address)
