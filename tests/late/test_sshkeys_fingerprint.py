"""Host key fingerprints from the public key blob, checked against ssh-keygen -l."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.late.sshkeys import SSHKeyError, fingerprint

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")

KEYS = [("rsa", "1024"), ("rsa", "2048"), ("rsa", "3072"), ("ed25519", None),
        ("ecdsa", "256"), ("ecdsa", "384"), ("ecdsa", "521"), ("dsa", None)]


def _keygen(tmp: Path, keytype: str, bits: str | None) -> Path | None:
    path = tmp / f"key_{keytype}_{bits}"
    argv = ["ssh-keygen", "-q", "-N", "", "-t", keytype, "-C", f"test {keytype}@host",
            "-f", str(path)]
    if bits:
        argv += ["-b", bits]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        assert keytype == "dsa", proc.stderr  # newer OpenSSH builds drop DSA
        return None
    return path.with_suffix(".pub")


@pytest.mark.parametrize("keytype,bits", KEYS)
def test_fingerprint_line_is_ssh_keygens(tmp_path: Path, keytype: str, bits: str | None) -> None:
    pub = _keygen(tmp_path, keytype, bits)
    if pub is None:
        pytest.skip("ssh-keygen cannot make DSA keys here")
    expected = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert fingerprint(pub.read_text()).line() == expected


def test_rsa_fingerprint_does_not_import_cryptography(tmp_path: Path) -> None:
    pub = _keygen(tmp_path, "rsa", "2048")
    assert pub is not None
    code = ("import sys\nfrom bootseed.late.sshkeys import fingerprint\n"
            f"print(fingerprint(open({str(pub)!r}).read()).bits, "
            "any(m.split('.')[0] == 'cryptography' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["2048", "False"]


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _line(keytype: str, blob: bytes) -> str:
    return f"{keytype} {base64.b64encode(blob).decode()} c"


@pytest.mark.parametrize("keytype,blob", [
    ("ssh-rsa", _string(b"ssh-rsa") + _string(b"\x01\x00\x01")),  # no modulus
    ("ssh-rsa", _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + b"\x00\x00\x01\x00ab"),
    ("ssh-rsa", _string(b"ssh-dss") + _string(b"\x01\x00\x01") + _string(b"\x00\xc1")),
    ("ssh-rsa", _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"\xc1") + b"x"),
    ("ssh-rsa", _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"")),
    ("ssh-rsa", _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(b"\x81")),
    ("ssh-dss", _string(b"ssh-dss") + _string(b"\x00\xff")),
    ("ssh-rsa", b"\x00\x00"),
])
def test_malformed_rsa_and_dsa_blobs_are_refused(keytype: str, blob: bytes) -> None:
    with pytest.raises(SSHKeyError):
        fingerprint(_line(keytype, blob))


def test_rsa_bits_come_from_the_modulus() -> None:
    modulus = b"\x00" + b"\x80" + b"\x00" * 255  # 2048-bit, with the sign byte
    blob = _string(b"ssh-rsa") + _string(b"\x01\x00\x01") + _string(modulus)
    assert fingerprint(_line("ssh-rsa", blob)).bits == 2048


def test_host_keys_made_together_come_back_in_the_order_asked() -> None:
    from bootseed.late.sshkeys import SSHKeyError, generate_host_keys, public_from_private

    made = generate_host_keys(["rsa", "dsa", "ed25519", "ecdsa"], "root@here")
    assert [type(m).__name__ for m in made] == ["HostKey", "SSHKeyError", "HostKey", "HostKey"]
    assert isinstance(made[1], SSHKeyError) and "'dsa'" in str(made[1])
    keys = [m for m in made if not isinstance(m, SSHKeyError)]
    assert [k.keytype for k in keys] == ["rsa", "ed25519", "ecdsa"]
    assert [fingerprint(k.public_line).label for k in keys] == ["RSA", "ED25519", "ECDSA"]
    assert fingerprint(keys[0].public_line).bits == 3072
    for key in keys:  # each public line belongs to its own private key
        assert public_from_private(key.private_pem, "root@here") == key.public_line
    assert generate_host_keys([], "x") == []
