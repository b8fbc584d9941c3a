"""End-to-end: system settings, passwords, the metadata lock-down and power_state.

Two guests boot at once from the EC2 metadata mock (so the lock-down is on
by default):

- ``settings``: timezone, a generated locale, chrony servers and pools, a CA
  the test made (trusted by ``ca_certs``, Debian's defaults removed), a user
  whose password ``chpasswd`` sets, ``ssh_pwauth: true`` and ``power_state:
  poweroff``. The lab's own
  report unit is told to stay up (``bootseed.lab.poweroff=0``), so the guest
  can only end by power_state's shutdown. Probes (a user script, final stage)
  check the guest's view: ``date +%Z``, ``locale -a``, ``chronyc -n
  sources``, ``sshd -T``, curl to two HTTPS servers on the host (one signed by
  the seed's CA, one by a CA the guest never saw), curl to the metadata
  service as root and as ``nobody``, and where the planted password appears
  (journal, bootseed's logs, world-readable files under /var/log /etc /run
  /var/lib);
- ``disabled``: ``disable_ec2_metadata: true``: root is refused too.
"""

from __future__ import annotations

import base64
import gzip
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import yaml
from bootseed.image_builder import labnet
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

from testsupport.tlslab import TestCA, TlsServer

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
PASSWORD = "Planted-Secret-7f3c9a"  # never to be seen outside /etc/shadow (as a hash)
USER = "alice"
RANDOM_USER = "bob"  # chpasswd type RANDOM: its password is on the console, once
PROBES = "/var/tmp/probes"
PROBE_NAMES = ("tz", "locales", "chrony", "sshd", "tls-trusted", "tls-untrusted",
               "imds-root", "imds-nobody", "nft", "secret-journal", "secret-logs",
               "secret-world-readable", "journal.gz", "bootseed-log.gz", "user-data-log.gz")
FILE_LIMIT = 64 * 1024  # the lab report's limit per file
REPORT_FILES = [f"{PROBES}/{name}" for name in PROBE_NAMES] + [
    "/etc/default/locale", "/etc/shadow", "/var/log/bootseed.log"]
NTP_SERVER = "169.254.100.40"  # nothing answers there: chrony lists it, unreachable
NTP_POOL = "pool.lab.invalid"


def _probe_script() -> str:
    secret = base64.b64encode(PASSWORD.encode()).decode()  # not the literal in the script
    curl = "curl -sS -m 20 -o /dev/null -w '%{http_code}'"
    nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups"
    return f"""#!/bin/sh
P={PROBES}
mkdir -p $P && chmod 700 $P
date +%Z > $P/tz
locale -a > $P/locales 2>&1
chronyc -n sources > $P/chrony 2>&1; echo "rc=$?" >> $P/chrony
cat /etc/chrony/sources.d/*.sources >> $P/chrony 2>&1
sshd -T 2>&1 | grep -i '^passwordauthentication' > $P/sshd
{curl} https://{labnet.TLS_TRUSTED_ADDR}/ > $P/tls-trusted 2>&1; echo " rc=$?" >> $P/tls-trusted
{curl} https://{labnet.TLS_UNTRUSTED_ADDR}/ > $P/tls-untrusted 2>&1
echo " rc=$?" >> $P/tls-untrusted
{curl} http://{labnet.IMDS_ADDR}/ > $P/imds-root 2>&1; echo " rc=$?" >> $P/imds-root
{nobody} {curl} http://{labnet.IMDS_ADDR}/ > $P/imds-nobody 2>&1
echo " rc=$?" >> $P/imds-nobody
nft list table inet bootseed_metadata > $P/nft 2>&1
PW=$(echo {secret} | base64 -d)
journalctl -b --no-pager -o cat | grep -cF -- "$PW" > $P/secret-journal
grep -lF -- "$PW" /var/log/bootseed.log /var/log/user-data.log /var/log/user_data.log \\
    > $P/secret-logs 2>/dev/null
find /var/log /etc /run /var/lib -type f -perm -o=r -print0 2>/dev/null \\
    | xargs -0 grep -lF -- "$PW" > $P/secret-world-readable 2>/dev/null
journalctl -b --no-pager -o cat | gzip -9 > $P/journal.gz
gzip -9c /var/log/bootseed.log > $P/bootseed-log.gz
gzip -9c /var/log/user_data.log > $P/user-data-log.gz
true
"""


def _seed_dir(tmp_path: Path, name: str, cloud_config: dict) -> Path:
    seed = tmp_path / name
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: i-{name}\nlocal-hostname: {name}\n")
    message = MIMEMultipart()
    message.attach(MIMEText("#cloud-config\n" + yaml.safe_dump(cloud_config), "cloud-config"))
    message.attach(MIMEText(_probe_script(), "x-shellscript"))
    (seed / "user-data").write_text(message.as_string())
    return seed


def _settings_config(ca: TestCA) -> dict:
    return {
        "timezone": "Europe/Berlin",
        "locale": "de_DE.UTF-8",
        "ntp": {"enabled": True, "ntp_client": "chrony", "servers": [NTP_SERVER],
                "pools": [NTP_POOL]},
        # Without Debian's ~140 default CAs update-ca-certificates takes seconds, not
        # minutes, under TCG; the untrusted server proves nothing else is trusted.
        "ca_certs": {"remove_defaults": True, "trusted": [ca.pem]},
        "users": [{"name": USER, "shell": "/bin/bash", "lock_passwd": False},
                  {"name": RANDOM_USER, "lock_passwd": False}],
        "chpasswd": {"expire": False, "users": [
            {"name": USER, "password": PASSWORD, "type": "text"},
            {"name": RANDOM_USER, "type": "RANDOM"}]},
        "ssh_pwauth": True,
        # One minute: time for the lab's report before the guest goes down.
        "power_state": {"mode": "poweroff", "delay": "+1",
                        "message": "bootseed lab: power_state poweroff"},
    }


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def _probe(result: BootResult, name: str) -> str:
    report = result.report
    assert report is not None, _diagnose(result)
    data = report.file_bytes(f"{PROBES}/{name}")
    assert data is not None, f"probe {name} missing: {report.file_entry(f'{PROBES}/{name}')}"
    return data.decode(errors="replace")


def _hash_matches(shadow_hash: str, password: str) -> bool:
    """Recompute the SHA-512 crypt with the host's openssl and the hash's own salt."""
    fields = shadow_hash.split("$")  # "", "6", salt, digest
    assert len(fields) == 4 and fields[1] == "6", shadow_hash
    made = subprocess.run(["openssl", "passwd", "-6", "-salt", fields[2], "-stdin"],
                          input=password, capture_output=True, text=True, check=True)
    return made.stdout.strip() == shadow_hash


def _check_settings(result: BootResult, trusted: TlsServer, untrusted: TlsServer) -> None:
    report = result.report
    assert report is not None and result.ok, _diagnose(result)
    assert report.state == "done" and not report.module_errors, _diagnose(result)
    # power_state ended the boot: the lab's report unit stayed up, QEMU exited by itself.
    assert report.raw.get("next") == "stay"
    assert not result.timed_out and result.qemu_returncode == 0, _diagnose(result)
    assert "power_state: poweroff in 1 min" in result.console_text()

    assert _probe(result, "tz").strip() in ("CET", "CEST")
    assert "de_DE.utf8" in _probe(result, "locales").split()
    assert report.file_bytes("/etc/default/locale") is not None
    assert "LANG=de_DE.UTF-8" in (report.file_bytes("/etc/default/locale") or b"").decode()
    chrony = _probe(result, "chrony")
    assert NTP_SERVER in chrony and "rc=0" in chrony, chrony
    assert f"pool {NTP_POOL} iburst" in chrony, chrony
    assert _probe(result, "sshd").strip() == "passwordauthentication yes"

    assert _probe(result, "tls-trusted").startswith("200 rc=0"), _probe(result, "tls-trusted")
    assert [r.path for r in trusted.requests] == ["/"]
    untrusted_out = _probe(result, "tls-untrusted")
    assert "rc=60" in untrusted_out, untrusted_out  # curl: peer certificate not trusted
    assert not untrusted.requests and untrusted.failed_handshakes >= 1

    assert _probe(result, "imds-root").startswith("200 rc=0"), _probe(result, "imds-root")
    # curl exit 7: could not connect (refused at once by the reject rule).
    nobody = _probe(result, "imds-nobody")
    assert nobody.endswith("000 rc=7\n"), nobody
    nft = _probe(result, "nft")
    assert "ip daddr 169.254.169.254 meta skuid != 0 reject" in nft, nft
    assert sum(1 for r in result.imds_requests if r.method == "GET" and r.path == "/") == 1

    shadow = (report.file_bytes("/etc/shadow") or b"").decode()
    (entry,) = [line.split(":") for line in shadow.splitlines() if line.startswith(f"{USER}:")]
    assert _hash_matches(entry[1], PASSWORD), entry[1]


def _gunzipped(result: BootResult, name: str) -> bytes:
    entry = result.report.file_entry(f"{PROBES}/{name}") if result.report else None
    assert entry is not None and "b64" in entry and entry["size"] <= FILE_LIMIT, entry
    return gzip.decompress(base64.b64decode(entry["b64"]))


def _random_password(result: BootResult) -> str:
    """The RANDOM password from the console line ``bob:<password>``, which must be there."""
    found = re.findall(rf"^{RANDOM_USER}:([A-Za-z0-9]{{20}})\r?$", result.console_text(), re.M)
    assert len(found) == 1, found
    return str(found[0])


def _check_no_leak(result: BootResult) -> None:
    report = result.report
    assert report is not None
    console = result.console_text()
    assert PASSWORD not in console
    # RANDOM: shown on the console exactly once, it is the account's password, and
    # it is nowhere else: not in the journal, bootseed's log or the user-data log.
    shown = _random_password(result)
    assert console.count(shown) == 1
    shadow = (report.file_bytes("/etc/shadow") or b"").decode()
    (entry,) = [line.split(":") for line in shadow.splitlines()
                if line.startswith(f"{RANDOM_USER}:")]
    assert _hash_matches(entry[1], shown), entry[1]
    for name in ("journal.gz", "bootseed-log.gz", "user-data-log.gz"):
        text = _gunzipped(result, name)
        assert shown.encode() not in text and PASSWORD.encode() not in text, name
    assert b"set_passwords" in _gunzipped(result, "bootseed-log.gz")
    assert _probe(result, "secret-journal").strip() == "0"
    assert _probe(result, "secret-logs").strip() == ""
    assert _probe(result, "secret-world-readable").strip() == ""
    for path, _entry in (report.raw.get("files") or {}).items():
        data = report.file_bytes(path) or b""
        assert PASSWORD.encode() not in data, path
    log = report.file_entry("/var/log/bootseed.log")
    assert log is not None and "b64" in log, log  # the log was there to look at


def _check_disabled(result: BootResult) -> None:
    report = result.report
    assert report is not None and result.ok, _diagnose(result)
    assert report.state == "done" and not report.module_errors, _diagnose(result)
    root = _probe(result, "imds-root")
    nobody = _probe(result, "imds-nobody")
    assert root.endswith("000 rc=7\n"), root
    assert nobody.endswith("000 rc=7\n"), nobody
    nft = _probe(result, "nft")
    assert "ip daddr 169.254.169.254 reject" in nft and "skuid" not in nft, nft
    # Only the initramfs's crawl reached the mock; no GET / from the guest's curl.
    assert not [r for r in result.imds_requests if r.path == "/"]


def test_settings_passwords_lockdown_and_power_state(lab_image: Path, tmp_path: Path) -> None:
    seed_ca, other_ca = TestCA("bootseed lab seed CA"), TestCA("a CA nobody trusts")
    trusted = TlsServer(seed_ca.issue(labnet.TLS_TRUSTED_ADDR)).start()
    untrusted = TlsServer(other_ca.issue(labnet.TLS_UNTRUSTED_ADDR)).start()
    try:
        forwards = [
            labnet.GuestForward(labnet.TLS_TRUSTED_ADDR, labnet.HTTPS_PORT,
                                int(trusted.server_address[1])),
            labnet.GuestForward(labnet.TLS_UNTRUSTED_ADDR, labnet.HTTPS_PORT,
                                int(untrusted.server_address[1])),
        ]
        runs = []
        for name, config, stay_up in (
                ("settings", _settings_config(seed_ca), True),
                ("disabled", {"disable_ec2_metadata": True}, False)):
            lab = BootLab(lab_image, tmp_path / f"boots-{name}")
            runs.append((lab, BootOptions(
                imds_dir=_seed_dir(tmp_path, name, config), imds_mode="v2-optional",
                report_files=REPORT_FILES, forwards=forwards if name == "settings" else [],
                allow_reboot=stay_up, timeout=TIMEOUT, status_timeout=600)))
        with ThreadPoolExecutor(max_workers=2) as pool:
            settings, disabled = pool.map(lambda run: run[0].boot(run[1]), runs)
        _check_settings(settings, trusted, untrusted)
        _check_no_leak(settings)
        _check_disabled(disabled)
    finally:
        trusted.stop()
        untrusted.stop()
    print(f"system settings boots: settings {settings.seconds:.0f}s, "
          f"disabled {disabled.seconds:.0f}s wall")
    shutil.rmtree(tmp_path / "boots-settings", ignore_errors=True)
