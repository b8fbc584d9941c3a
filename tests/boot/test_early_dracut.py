"""A dracut-built image fetches an EC2 seed in its initramfs, over pyroute2 and DHCP.

The image is the lab image with ``initramfs="dracut"``: its base tree has dracut instead
of initramfs-tools (cached by that package list), bootseed's Debian packages are
installed as usual, and the package's trigger has dracut rebuild the initramfs with
bootseed's module and the ``/etc/dracut.conf.d/bootseed.conf`` the package installs.
dracut ships no klibc, so the early stage's only network path is pyroute2's netlink
with its own DHCPv4 (``bootseed.early.dhcp4``).

One boot, as an EC2-like guest (EC2's DMI, the lab's IMDSv2 mock): the seed writes a
file, and its runcmd lists the running kernel's initramfs with dracut's own
``lsinitrd``, so the listing checked is the one this guest booted from.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import pytest
from bootseed.image_builder.build import build_image
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

from testsupport.labimage import lab_build_options

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
SEED_JSON = "/run/bootseed/seed.json"
WRITTEN = "/etc/dracut-seed-written"
RAN = "/var/tmp/dracut-seed-runcmd"
LISTING = "/var/tmp/dracut-initrd-listing"
INSTANCE_ID = "iid-dracut-ec2"
# lsinitrd prints "ls -l"-like lines; the path is the 9th field (a device node's is the
# 10th: none of ours is one). Only the paths go in the report, and not the kernel modules,
# which keeps the listing well under the report's 64 KiB per file.
LIST_CMD = (f"lsinitrd /boot/initrd.img-$(uname -r) | awk 'NF >= 9 && $1 !~ /^[cb]/ && "
            f"$9 !~ /^usr\\/lib\\/modules\\// {{print $9}}' > {LISTING}")


@pytest.fixture(scope="module")
def dracut_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dracut-image")
    manifest = build_image(lab_build_options(out, initramfs="dracut"), quiet=True)
    assert manifest.initramfs == "dracut" and manifest.initramfs_hook
    # The generator is a base tree package: dracut in, initramfs-tools and klibc out.
    assert "dracut" in manifest.packages, sorted(manifest.packages)
    assert not {"initramfs-tools", "klibc-utils"} & set(manifest.packages)
    raw = manifest.file("raw")
    assert raw is not None
    return Path(raw.path)


def _seed(tmp_path: Path) -> Path:
    seed = tmp_path / "ec2-seed"
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: {INSTANCE_ID}\nlocal-hostname: dracut-ec2\n")
    (seed / "user-data").write_text(
        "#cloud-config\n"
        f"write_files:\n  - path: {WRITTEN}\n    content: \"dracut\\n\"\n"
        f"runcmd:\n  - echo dracut > {RAN}\n  - {json.dumps(LIST_CMD)}\n")
    return seed


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def _early_action(seed: dict[str, Any]) -> dict[str, Any]:
    [action] = [a for a in seed.get("actions", []) if a.get("action") == "early-stage"]
    return dict(action)


def test_dracut_image_fetches_ec2_seed_early_over_pyroute2(dracut_image: Path,
                                                            tmp_path: Path) -> None:
    result = BootLab(dracut_image, tmp_path / "boots").boot(BootOptions(
        imds_dir=_seed(tmp_path), imds_mode="v2-required", timeout=TIMEOUT,
        report_files=[SEED_JSON, WRITTEN, RAN, LISTING]))
    report = result.report
    assert report is not None and result.ok, _diagnose(result)

    # The seed came from the EARLY stage, over pyroute2 with the stage's own DHCP.
    seed = json.loads(report.file_bytes(SEED_JSON) or b"{}")
    assert seed.get("source") == "ec2" and seed.get("stage") == "early", seed
    assert seed.get("instance_id") == INSTANCE_ID, seed
    action = _early_action(seed)
    network = action["network"]
    assert network["backend"] == "pyroute2" and network["method"] == "dhcp", action
    assert network["address"] and network["teardown"], action
    assert "via pyroute2" in action["decision"], action
    assert not [p for p in seed.get("problems", []) if p.get("where") == "early network"]

    # The instance is configured (by the late agent, from the early stage's cache).
    status = report.status or {}
    assert status.get("source") == "ec2", _diagnose(result)
    assert report.file_bytes(WRITTEN) == b"dracut\n", _diagnose(result)
    assert report.file_bytes(RAN) == b"dracut\n", _diagnose(result)

    # The initramfs this guest booted: dracut's, with bootseed's module and pyroute2, and
    # no klibc ipconfig (nor any klibc) anywhere in it.
    entry = report.file_entry(LISTING) or {}
    data = report.file_bytes(LISTING) or b""
    assert entry.get("size") == len(data), "the listing was cut short in the report"
    listing = data.decode().split()
    assert len(listing) > 100, listing[:20]
    assert "usr/lib/dracut/hooks/pre-mount/50-bootseed-premount.sh" in listing
    assert "usr/lib/python3.11/pyroute2/iproute/linux.pyc" in listing
    assert "usr/lib/python3.11/bootseed/early/dhcp4.pyc" in listing
    # Extension modules' libraries: dracut-install resolves those of executables only.
    assert "usr/lib/x86_64-linux-gnu/libssl.so.3" in listing
    assert not [p for p in listing if posixpath.basename(p) == "ipconfig" or "klibc" in p]
    assert not [p for p in listing if p.startswith("scripts/init-premount")]

    # The lab's IMDS mock saw the early stage's session: one token, the user-data once,
    # and every request one the stage counted (the late agent asked for nothing more).
    methods = [r.method for r in result.imds_requests]
    assert methods.count("PUT") == 1, methods
    assert sum(r.path.endswith("/user-data") for r in result.imds_requests) == 1
    assert len(result.imds_requests) == seed["metadata"]["imds"]["requests"]
    print(f"dracut ec2 boot: {result.seconds:.0f}s wall")
