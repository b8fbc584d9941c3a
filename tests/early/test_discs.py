"""Seed discs as real ISO/vfat images on loop devices, found by label and mounted."""

import base64
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from bootseed.early.blockdev import (
    BlkidBinaryFinder,
    BlkidBindingFinder,
    BlockDevice,
    ByLabelFinder,
    default_finder,
    list_block_devices,
    mounted,
)
from bootseed.early.discover import discover
from bootseed.image_builder import seeddisc
from bootseed.image_builder.mocks.static import StaticServer

from .seedhelpers import (
    MOUNT_LOG,
    isolated_config,
    kernel_filesystems,
    mount_or_extract,
    write_seed_dir,
)

pytestmark = pytest.mark.root

USER_DATA = b"#cloud-config\nruncmd: [echo disc]\n"
META = b"instance-id: iid-disc\nlocal-hostname: discbox\npublic-keys:\n  - ssh-ed25519 AAAA d\n"


@pytest.fixture(autouse=True)
def _need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root for loop devices and mounts")


@contextmanager
def loop_device(image: Path):
    dev = subprocess.run(["losetup", "-f", "--show", "-r", str(image)], capture_output=True,
                         text=True, check=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def our_mounts():
    with open("/proc/mounts") as handle:
        return [line for line in handle if "bootseed-mnt-" in line]


def disc_config(tmp_path, dev, cmdline="", finder=None, **kw):
    kw.setdefault("mounter", mount_or_extract)
    return isolated_config(tmp_path, cmdline, scan_discs=True,
                           blockdev_finder=finder or BlkidBindingFinder([dev]), **kw)


def make_ext4(image, files, label):
    tree = image.parent / (image.name + ".d")
    write_seed_dir(tree, files)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(tree), str(image), "4M"],
                   check=True)
    return image


def test_ext4_cidata_through_the_kernel_mount(tmp_path):
    # ext4 is in every kernel this runs on, so this exercises mount -o ro / umount for real.
    image = make_ext4(tmp_path / "seed.img", {"user-data": USER_DATA, "meta-data": META},
                      "cidata")
    before = our_mounts()
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev, mounter=mounted))
    assert seed.source == "nocloud" and seed.location == dev, seed.problems
    assert seed.payloads["user-data"] == USER_DATA
    assert our_mounts() == before
    assert not list(Path("/run").glob("bootseed-mnt-*"))


def test_ext4_cidata_by_udev_label_links_mount_autodetects(tmp_path):
    image = make_ext4(tmp_path / "seed.img", {"meta-data": META}, "cidata")
    links = tmp_path / "by-label"
    links.mkdir()
    with loop_device(image) as dev:
        (links / "cidata").symlink_to(dev)
        seed = discover(disc_config(tmp_path, dev, finder=ByLabelFinder(str(links)),
                                    mounter=mounted))
    assert seed.source == "nocloud" and seed.instance_id == "iid-disc"


def test_mount_failure_is_a_problem_and_leaves_nothing_behind(tmp_path):
    image = make_ext4(tmp_path / "seed.img", {"meta-data": META}, "cidata")
    with loop_device(image) as dev:
        bogus = BlockDevice(dev, label="cidata",
                            fstype="vfat" if "vfat" not in kernel_filesystems() else "udf")

        class Finder:
            name = "fixed"

            def scan(self):
                return [bogus]

        seed = discover(disc_config(tmp_path, dev, finder=Finder(), mounter=mounted))
    assert seed.source == "none"
    assert any(p.where == f"nocloud-disc {dev}" and "mount" in p.message
               for p in seed.problems)
    assert not list(Path("/run").glob("bootseed-mnt-*"))


def test_cidata_iso_found_by_pylibblkid(tmp_path):
    image = seeddisc.make_cidata_iso(tmp_path / "seed.iso",
                                     {"user-data": USER_DATA, "meta-data": META,
                                      "network-config": b"version: 2\n"})
    before = our_mounts()
    with loop_device(image) as dev:
        assert dev in list_block_devices()
        seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "nocloud" and seed.location == dev
    assert seed.instance_id == "iid-disc"
    assert seed.metadata["public-keys"] == ["ssh-ed25519 AAAA d"]
    assert seed.payloads == {"user-data": USER_DATA, "meta-data": META,
                             "network-config": b"version: 2\n"}
    assert seed.found["user-data"] == f"{dev}:user-data"
    assert seed.problems == []
    assert any(t.name == f"nocloud-disc {dev}" and t.outcome == "ok" for t in seed.timings)
    assert our_mounts() == before
    assert not list(Path("/run").glob("bootseed-mnt-*"))
    assert MOUNT_LOG[-1][0] == dev


def test_cidata_vfat_found_by_blkid_binary(tmp_path):
    image = seeddisc.make_cidata_vfat(tmp_path / "seed.img",
                                      {"user-data": USER_DATA, "meta-data": META})
    with loop_device(image) as dev:
        finder = BlkidBinaryFinder([dev])
        [found] = finder.scan()
        assert (found.label, found.fstype) == ("CIDATA", "vfat")
        seed = discover(disc_config(tmp_path, dev, finder=finder))
    assert seed.source == "nocloud" and seed.payloads["user-data"] == USER_DATA


def test_default_finder_prefers_the_binding(tmp_path):
    assert default_finder(["/dev/null"]).name == "pylibblkid"


def test_config_drive(tmp_path):
    meta = {"uuid": "83679162-1378-4288-a2d4-70e13ec132aa", "hostname": "cd-host",
            "name": "cd", "launch_index": 1, "availability_zone": "nova",
            "public_keys": {"mykey": "ssh-rsa AAAA cd"}}
    network = {"links": [{"id": "eth0", "type": "phy"}], "networks": [], "services": []}
    image = seeddisc.make_config_drive_iso(tmp_path / "cd.iso", meta, USER_DATA,
                                           vendor_data={"cloud-init": "#cloud-config\n{}\n"},
                                           network_data=network)
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "configdrive"
    assert seed.instance_id == "83679162-1378-4288-a2d4-70e13ec132aa"
    md = seed.metadata
    assert (md["local-hostname"], md["launch-index"], md["availability-zone"]) == (
        "cd-host", 1, "nova")
    assert md["public-keys"] == ["ssh-rsa AAAA cd"]
    assert md["network-config-format"] == "openstack-network-data"
    assert seed.payloads["user-data"] == USER_DATA
    assert seed.payloads["vendor-data"] == b"#cloud-config\n{}\n"
    assert b'"links"' in seed.payloads["network-config"]
    assert seed.found["meta-data"] == f"{dev}:openstack/latest/meta_data.json"


def test_config_drive_without_uuid_is_a_problem(tmp_path):
    files = seeddisc.config_drive_files({"hostname": "x"})
    image = seeddisc.make_iso(tmp_path / "cd.iso", files, "config-2")
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "none"
    assert any("no uuid" in p.message and "meta_data.json" in p.where for p in seed.problems)


def test_ovf_iso(tmp_path):
    xml = seeddisc.build_ovf_env({"instance-id": "ovf-1", "hostname": "ovfhost",
                                  "public-keys": "ssh-ed25519 AAAA o1\nssh-ed25519 AAAA o2",
                                  "password": "pa<ss>"}, user_data=USER_DATA)
    image = seeddisc.make_ovf_iso(tmp_path / "ovf.iso", xml)
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "ovf" and seed.instance_id == "ovf-1"
    assert seed.metadata["local-hostname"] == "ovfhost"
    assert seed.metadata["public-keys"] == ["ssh-ed25519 AAAA o1", "ssh-ed25519 AAAA o2"]
    assert seed.metadata["sensitive"] == {"password": "pa<ss>"}
    assert seed.payloads["user-data"] == USER_DATA
    assert "base64" in seed.found["user-data"]


def test_ovf_upper_case_name_and_raw_user_data(tmp_path):
    xml = seeddisc.build_ovf_env({"instance-id": "ovf-2", "user-data": "#!/bin/sh\necho hi"})
    image = seeddisc.make_ovf_iso(tmp_path / "ovf.iso", xml, name="OVF-ENV.XML", label="X")
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "ovf"
    assert seed.payloads["user-data"] == b"#!/bin/sh\necho hi"
    assert "raw" in seed.found["user-data"]


def test_ovf_seedfrom_fetches_and_disc_overrides(tmp_path):
    write_seed_dir(tmp_path / "www", {"meta-data": "instance-id: remote\nlocal-hostname: r\n",
                                      "user-data": USER_DATA})
    with StaticServer(tmp_path / "www") as srv:
        xml = seeddisc.build_ovf_env({"instance-id": "ovf-3", "seedfrom": f"{srv.url}/"})
        image = seeddisc.make_ovf_iso(tmp_path / "ovf.iso", xml)
        with loop_device(image) as dev:
            seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "ovf"
    assert seed.instance_id == "ovf-3"
    assert seed.metadata["local-hostname"] == "r"
    assert seed.payloads["user-data"] == USER_DATA


def test_ovf_rejects_entity_declarations(tmp_path):
    xml = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
           b'<Environment><PropertySection/></Environment>')
    image = seeddisc.make_ovf_iso(tmp_path / "ovf.iso", xml)
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev))
    assert seed.source == "none"
    assert any("DOCTYPE" in p.message and p.where.endswith("ovf-env.xml")
               for p in seed.problems)


def test_datasource_restriction_skips_other_discs(tmp_path):
    image = seeddisc.make_cidata_iso(tmp_path / "seed.iso", {"meta-data": META})
    with loop_device(image) as dev:
        seed = discover(disc_config(tmp_path, dev, "bootseed.ds=configdrive"))
    assert seed.source == "none"
    assert not any(t.name.startswith("nocloud-disc") for t in seed.timings)


def test_ovf_payload_decodes_like_base64_module(tmp_path):
    from bootseed.early.sources.ovf import _decode_user_data

    assert _decode_user_data(base64.b64encode(b"\x00\xffbin").decode()) == (b"\x00\xffbin",
                                                                             "base64")
    assert _decode_user_data("not base64!") == (b"not base64!", "raw")


def test_binding_and_binary_report_the_same_device(tmp_path):
    image = make_ext4(tmp_path / "vol.img", {"meta-data": META}, "data1")
    with loop_device(image) as dev:
        by_binding = BlkidBindingFinder([dev]).scan()
        by_binary = BlkidBinaryFinder([dev]).scan()
        rdev = os.stat(dev).st_rdev
    assert by_binding == by_binary
    [found] = by_binding
    assert (found.path, found.label, found.fstype, found.rdev) == (dev, "data1", "ext4", rdev)
    assert found.uuid and len(found.uuid) == 36


def test_by_label_finder_keeps_to_the_devices_asked_for(tmp_path):
    links = tmp_path / "by-label"
    links.mkdir()
    for name in ("a", "b"):
        (tmp_path / name).touch()
    (links / "cidata").symlink_to(tmp_path / "a")
    (links / "other\\x20disc").symlink_to(tmp_path / "b")
    assert [(d.path, d.label) for d in ByLabelFinder(str(links)).scan()] == [
        (str(tmp_path / "a"), "cidata"), (str(tmp_path / "b"), "other disc")]
    only_b = ByLabelFinder(str(links), devices=[str(tmp_path / "b")]).scan()
    assert only_b == [BlockDevice(str(tmp_path / "b"), label="other disc")]
