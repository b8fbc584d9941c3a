"""End-to-end: the example seed over every transport, and a boot with no seed.

Each boot checks, from the guest's own report (``bootseed status`` plus
probes printed on the serial console), that the seed was found by the right
source and applied: hostname, user with key and sudo group, the written
file, the runcmd marker, and that phone-home reached the lab's sink.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from bootseed.image_builder.guest.report import PROBE_DIR
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

from .conftest import EXAMPLE_SEED

pytestmark = pytest.mark.boot

INSTANCE_ID = "iid-bootseed-demo-0001"
HELLO = "/etc/bootseed-demo/hello.txt"
MARKER = "/var/tmp/bootseed-runcmd-marker"
REPORT_FILES = [HELLO, MARKER]
# Hard limit per boot. A boot takes 1-2 min under TCG on 2 cores; the margin
# is for machines where other work competes for the CPU.
TIMEOUT = 480.0


def _user_data() -> dict:
    return yaml.safe_load((EXAMPLE_SEED / "user-data").read_text())


def _diagnose(result: BootResult) -> str:
    tail = result.console_text()[-3000:]
    return f"{result.summary()}\n--- console tail ---\n{tail}"


def assert_example_applied(result: BootResult, source: str) -> None:
    report = result.report
    assert report is not None, _diagnose(result)
    assert result.ok, _diagnose(result)
    status = report.status or {}
    assert status.get("source") == source, _diagnose(result)
    assert status.get("instance_id") == INSTANCE_ID
    assert not report.no_seed

    user_data = _user_data()
    assert report.hostname == user_data["hostname"]

    (wanted_user,) = user_data["users"]
    user = report.user(wanted_user["name"])
    assert user is not None, f"user {wanted_user['name']} missing: {report.raw.get('users')}"
    assert user["shell"] == wanted_user["shell"]
    assert "sudo" in user["groups"]
    assert user["authorized_keys"] == wanted_user["ssh_authorized_keys"]

    (written,) = user_data["write_files"]
    assert report.file_bytes(HELLO) == written["content"].encode()
    hello = report.file_entry(HELLO)
    assert hello is not None and hello["mode"] == written["permissions"]

    marker = report.file_bytes(MARKER)
    assert marker is not None and marker.startswith(b"runcmd-ran-at-"), report.file_entry(MARKER)

    posts = [r for r in result.sink_requests if r.method == "POST"]
    assert posts, "phone-home never reached the lab's sink"
    assert posts[-1].path == f"/phone-home/{INSTANCE_ID}"
    form = parse_qs(posts[-1].body.decode())
    assert form["instance_id"] == [INSTANCE_ID]
    assert form["hostname"] == [user_data["hostname"]]


def test_nocloud_url_on_the_kernel_command_line(lab: BootLab):
    result = lab.boot(BootOptions(nocloud_dir=EXAMPLE_SEED, report_files=REPORT_FILES,
                                  timeout=TIMEOUT))
    assert_example_applied(result, "nocloud")
    fetched = {r.path for r in result.seed_requests}
    assert {"/meta-data", "/user-data"} <= fetched
    assert "ds=nocloud;s=http://169.254.100.1/" in result.kernel_args


def test_ec2_imdsv2_mock(lab: BootLab):
    result = lab.boot(BootOptions(imds_dir=EXAMPLE_SEED, imds_mode="v2-required",
                                  report_files=REPORT_FILES, timeout=TIMEOUT))
    assert_example_applied(result, "ec2")
    tokens = [r for r in result.imds_requests if r.method == "PUT"]
    assert tokens and tokens[0].path == "/latest/api/token"
    gets = [r for r in result.imds_requests if r.method == "GET"]
    assert gets and all("X-aws-ec2-metadata-token" in r.headers for r in gets)


def test_cidata_iso(lab: BootLab, tmp_path: Path):
    seed = tmp_path / "cidata"
    shutil.copytree(EXAMPLE_SEED, seed)
    # The example seed plus a probe of the host keys sshd serves once bootseed is done.
    user_data = _user_data()
    user_data["write_files"].append({"path": f"{PROBE_DIR}/host-keys", "permissions": "0755",
                                     "content": HOST_KEY_PROBE})
    (seed / "user-data").write_text("#cloud-config\n" + yaml.safe_dump(user_data))
    result = lab.boot(BootOptions(cidata_dir=seed, report_files=REPORT_FILES, timeout=TIMEOUT))
    assert_example_applied(result, "nocloud")
    assert not result.seed_requests and not result.imds_requests
    assert_sshd_serves_every_host_key(result)


# ssh-keyscan inside the guest (its own loopback): the keys sshd offers, beside the files.
HOST_KEY_PROBE = """#!/bin/sh
for t in ed25519 ecdsa rsa; do
  echo "file $(cut -d' ' -f1,2 /etc/ssh/ssh_host_${t}_key.pub)"
done
ssh-keyscan -T 60 -t ed25519,ecdsa,rsa 127.0.0.1 2>/dev/null | sed 's/^127.0.0.1 /served /'
"""


def assert_sshd_serves_every_host_key(result: BootResult) -> None:
    """RSA is made beside the boot and sshd restarted once it is written: by the time
    bootseed is done, sshd serves all three keys of this instance, and no other."""
    assert result.report is not None
    block = (result.report.raw.get("probes") or {}).get("host-keys")
    assert block is not None and block["rc"] == 0, f"{block}\n{_diagnose(result)}"
    lines = block["stdout"].splitlines()
    files = {line.split(" ", 1)[1] for line in lines if line.startswith("file ")}
    served = {line.split(" ", 1)[1] for line in lines if line.startswith("served ")}
    assert len(files) == 3 and all(len(key.split()) == 2 for key in files), lines
    assert served == files, lines


def test_ovf_iso(lab: BootLab, tmp_path: Path):
    from bootseed.image_builder.seeddisc import build_ovf_env

    meta = yaml.safe_load((EXAMPLE_SEED / "meta-data").read_text())
    xml = build_ovf_env({"instance-id": meta["instance-id"],
                         "local-hostname": meta["local-hostname"]},
                        user_data=(EXAMPLE_SEED / "user-data").read_bytes())
    ovf = tmp_path / "ovf-env.xml"
    ovf.write_bytes(xml)
    result = lab.boot(BootOptions(ovf_file=ovf, report_files=REPORT_FILES, timeout=TIMEOUT))
    assert_example_applied(result, "ovf")


def test_no_seed_reaches_multi_user_and_says_so(lab: BootLab):
    result = lab.boot(BootOptions(timeout=TIMEOUT))
    report = result.report
    assert report is not None, _diagnose(result)
    assert result.ok, _diagnose(result)
    assert report.no_seed, _diagnose(result)
    if report.not_run:
        # bootseed-generator saw no seed and left bootseed out of the boot.
        assert "no seed" in report.generator
    else:
        assert report.state == "done"
        assert (report.status or {}).get("source") == "none"
        assert not report.module_errors
    multi_user = report.raw.get("multi_user_reached")
    assert isinstance(multi_user, float) and multi_user > 0
    assert not result.sink_requests and not result.seed_requests
    print(f"no-seed boot: multi-user at {multi_user:.1f}s guest uptime, "
          f"{result.seconds:.0f}s wall")
