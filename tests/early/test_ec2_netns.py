"""EC2 discovery at its real default addresses, inside a network namespace made here.

169.254.169.254 and fd00:ec2::254 are put on the namespace's own loopback; the
mock and the client both run inside it, so nothing leaves the namespace.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.root

SCRIPT = r"""
import json, sys
from bootseed.early.discover import DiscoveryConfig, discover
from bootseed.image_builder.mocks.imds import MockImds

serve, dmi, root = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
servers = [MockImds({"instance-id": "i-ns-" + host}, b"#cloud-config\n", mode="v2-required",
                    host=host, port=80).start() for host in serve if host]
try:
    seed = discover(DiscoveryConfig(cmdline="", root=root, dmi_dir=dmi, scan_discs=False,
                                    total_budget=10.0))
finally:
    for srv in servers:
        srv.stop()
print(json.dumps({"manifest": seed.manifest(),
                  "requests": {srv.url: len(srv.requests) for srv in servers}}))
"""


@pytest.fixture
def netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    name = f"bootseed-h2-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_in(netns, tmp_path, addresses, serve):
    for addr in addresses:
        subprocess.run(["ip", "-n", netns, "addr", "add", addr, "dev", "lo"], check=True)
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "sys_vendor").write_text("Amazon EC2\n")
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SCRIPT, ",".join(serve), str(dmi),
         str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_default_ipv4_endpoint(netns, tmp_path):
    out = run_in(netns, tmp_path, ["169.254.169.254/32"], ["169.254.169.254"])
    manifest = out["manifest"]
    assert manifest["source"] == "ec2"
    assert manifest["location"] == "http://169.254.169.254"
    assert manifest["instance_id"] == "i-ns-169.254.169.254"
    assert out["requests"]["http://169.254.169.254:80"] > 3


def test_ipv6_endpoint_when_ipv4_is_absent(netns, tmp_path):
    out = run_in(netns, tmp_path, ["fd00:ec2::254/128"], ["fd00:ec2::254"])
    manifest = out["manifest"]
    assert manifest["source"] == "ec2", manifest["problems"]
    assert manifest["location"] == "http://[fd00:ec2::254]"
    assert [p["where"] for p in manifest["problems"]] == ["http://169.254.169.254"]
