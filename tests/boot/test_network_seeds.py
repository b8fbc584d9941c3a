"""Network seeds found by the late agent: no early stage, or an early stage whose
network bring-up failed. Two guests boot at once:

- the ``bootseed`` package alone (no bootseed-initramfs, so the initramfs has no
  early stage) with a NoCloud URL on the kernel command line: the local stage
  searches local sources only, the network stage fetches the URL once the network
  is up and configures the instance;
- the full lab image on an EC2-like guest (EC2's DMI, the IMDSv2 mock) with
  ``bootseed.net=nonet0``: the initramfs is told to bring up a NIC that does not
  exist, so its network bring-up fails and it caches "no seed"; the late agent's
  network stage fetches the EC2 seed and configures the instance.

Each seed writes a file and runs a command; both are in the guest report.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bootseed.image_builder.build import build_image
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

from testsupport.labimage import lab_build_options

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
WRITTEN = "/etc/late-seed-written"
RAN = "/var/tmp/late-seed-runcmd"
SEED_JSON = "/run/bootseed/seed.json"
REPORT_FILES = [WRITTEN, RAN, SEED_JSON]
MISSING_NIC = "nonet0"


@pytest.fixture(scope="module")
def package_only_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package-only-image")
    manifest = build_image(lab_build_options(out, initramfs_part=False), quiet=True)
    assert manifest.initramfs_hook is False
    raw = manifest.file("raw")
    assert raw is not None
    return Path(raw.path)


def _seed_dir(tmp_path: Path, name: str) -> Path:
    seed = tmp_path / name
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: iid-{name}\nlocal-hostname: {name}\n")
    (seed / "user-data").write_text(
        "#cloud-config\n"
        f"write_files:\n  - path: {WRITTEN}\n    content: \"{name}\\n\"\n"
        f"runcmd:\n  - echo {name} > {RAN}\n")
    return seed


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def _check_configured_late(result: BootResult, name: str, source: str) -> dict:
    report = result.report
    assert report is not None and result.ok, _diagnose(result)
    status = report.status or {}
    assert status.get("source") == source, _diagnose(result)
    assert status.get("config_stage") == "network", _diagnose(result)
    assert report.file_bytes(WRITTEN) == f"{name}\n".encode(), _diagnose(result)
    assert report.file_bytes(RAN) == f"{name}\n".encode(), _diagnose(result)
    seed = json.loads(report.file_bytes(SEED_JSON) or b"{}")
    assert seed.get("stage") == "network" and seed.get("source") == source, seed
    return seed


def test_late_network_seeds(lab_image: Path, package_only_image: Path,
                            tmp_path: Path) -> None:
    url_seed = _seed_dir(tmp_path, "late-url")
    ec2_seed = _seed_dir(tmp_path, "late-ec2")
    runs = [
        (BootLab(package_only_image, tmp_path / "boots-url"),
         BootOptions(nocloud_dir=url_seed, report_files=REPORT_FILES, timeout=TIMEOUT)),
        (BootLab(lab_image, tmp_path / "boots-ec2"),
         BootOptions(imds_dir=ec2_seed, imds_mode="v2-required", report_files=REPORT_FILES,
                     kernel_args=[f"bootseed.net={MISSING_NIC}"], timeout=TIMEOUT)),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        url, ec2 = pool.map(lambda run: run[0].boot(run[1]), runs)

    # -- the bootseed package alone, NoCloud URL ---------------------------------
    seed = _check_configured_late(url, "late-url", "nocloud")
    # No early stage ran: no record of one in the seed cache.
    assert not [a for a in seed.get("actions", []) if a.get("action") == "early-stage"], seed
    assert [r.path for r in url.seed_requests][:1] == ["/meta-data"]

    # -- EC2 with the initramfs network bring-up failing -------------------------
    seed = _check_configured_late(ec2, "late-ec2", "ec2")
    early = [p for p in seed.get("problems", []) if p.get("where") == "early network"]
    assert early and MISSING_NIC in early[0]["message"], seed.get("problems")
    [stage] = [a for a in seed.get("actions", []) if a.get("action") == "early-stage"]
    assert "bring-up failed" in stage["decision"], stage
    # The token PUT and the metadata GETs came from the late agent (one session).
    assert any(r.method == "PUT" for r in ec2.imds_requests), _diagnose(ec2)
    print(f"late network seed boots: url {url.seconds:.0f}s, ec2 {ec2.seconds:.0f}s wall")
    shutil.rmtree(tmp_path / "boots-url", ignore_errors=True)
    shutil.rmtree(tmp_path / "boots-ec2", ignore_errors=True)


LAB_MAC = "52:54:00:12:34:56"
NETWORK_FILE = "/etc/systemd/network/10-bootseed-lab0.network"
VENDOR_RAN = "/var/tmp/openstack-vendor-ran"


def _openstack_dir(tmp_path: Path) -> Path:
    seed = tmp_path / "openstack"
    seed.mkdir()
    (seed / "meta_data.json").write_text(json.dumps({
        "uuid": "5d7d1a52-3d8e-4c1e-8f7b-8f2c1a9b7e10", "hostname": "nova-lab",
        "name": "nova-lab", "availability_zone": "nova", "launch_index": 0}))
    (seed / "user_data").write_text(
        "#cloud-config\n"
        f"write_files:\n  - path: {WRITTEN}\n    content: \"openstack\\n\"\n"
        f"runcmd:\n  - echo openstack > {RAN}\n")
    (seed / "vendor_data2.json").write_text(json.dumps(
        {"cloud-init": f"#!/bin/sh\necho vendor2 > {VENDOR_RAN}\n"}))
    # The lab network, statically: QEMU's restricted network offers no gateway over DHCP.
    (seed / "network_data.json").write_text(json.dumps({
        "links": [{"id": "lab0", "type": "phy", "ethernet_mac_address": LAB_MAC,
                   "mtu": 1500}],
        "networks": [{"id": "net0", "type": "ipv4", "link": "lab0",
                      "ip_address": "169.252.0.15", "netmask": "255.252.0.0",
                      "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                                  "gateway": "169.252.0.2"}]}],
        "services": [{"type": "dns", "address": "169.252.0.3"}]}))
    return seed


def test_openstack_metadata_service_by_dmi(lab: BootLab, tmp_path: Path) -> None:
    """The initramfs finds the OpenStack metadata service by Nova's DMI; its
    network_data.json is rendered for networkd before the network starts."""
    result = lab.boot(BootOptions(
        openstack_dir=_openstack_dir(tmp_path), timeout=TIMEOUT,
        report_files=[WRITTEN, RAN, SEED_JSON, NETWORK_FILE, VENDOR_RAN]))
    report = result.report
    assert report is not None and result.ok, _diagnose(result)
    status = report.status or {}
    assert status.get("source") == "openstack", _diagnose(result)
    assert status.get("instance_id") == "5d7d1a52-3d8e-4c1e-8f7b-8f2c1a9b7e10"
    assert report.hostname == "nova-lab"
    seed = json.loads(report.file_bytes(SEED_JSON) or b"{}")
    assert seed.get("stage") == "early", seed
    assert seed["metadata"]["openstack-metadata-service"]["version"] == "latest"
    paths = [r.path for r in result.imds_requests]
    assert paths[0] == "/openstack/" and "/openstack/latest/network_data.json" in paths
    assert report.file_bytes(WRITTEN) == b"openstack\n"
    assert report.file_bytes(RAN) == b"openstack\n"
    assert report.file_bytes(VENDOR_RAN) == b"vendor2\n"
    network = (report.file_bytes(NETWORK_FILE) or b"").decode()
    assert f"PermanentMACAddress={LAB_MAC}" in network and "Address=169.252.0.15/14" in network
    assert any(a.endswith(":169.252.0.15/14") for a in report.addresses), report.addresses
    print(f"openstack boot: {result.seconds:.0f}s wall")
