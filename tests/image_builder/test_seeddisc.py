"""Seed disc images: checked with blkid (labels, types) and read back file by file."""

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest
from bootseed.early.sources.ovf import parse_properties
from bootseed.image_builder import seeddisc


def probe(image):
    out = subprocess.run(["blkid", "-c", "/dev/null", "-o", "export", str(image)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_cidata_iso_round_trip(tmp_path):
    files = {"user-data": b"#cloud-config\n", "meta-data": b"instance-id: a\n",
             "network-config": b"version: 2\n"}
    image = seeddisc.make_cidata_iso(tmp_path / "c.iso", files)
    tags = probe(image)
    assert (tags["LABEL"], tags["TYPE"]) == ("cidata", "iso9660")
    assert seeddisc.files_from_dir(seeddisc.extract_disc(image, tmp_path / "x")) == files


def test_cidata_vfat_round_trip_with_subdir(tmp_path):
    files = {"user-data": b"#cloud-config\n", "meta-data": b"instance-id: a\n",
             "extra/dir/file.txt": b"x" * 5000}
    image = seeddisc.make_cidata_vfat(tmp_path / "c.img", files)
    tags = probe(image)
    assert (tags["LABEL"], tags["TYPE"]) == ("CIDATA", "vfat")
    assert seeddisc.files_from_dir(seeddisc.extract_disc(image, tmp_path / "x")) == files


def test_config_drive_layout(tmp_path):
    image = seeddisc.make_config_drive_iso(tmp_path / "cd.iso", {"uuid": "u-1"}, b"ud",
                                           vendor_data="#cloud-config\n",
                                           network_data={"links": []})
    assert probe(image)["LABEL"] == "config-2"
    got = seeddisc.files_from_dir(seeddisc.extract_disc(image, tmp_path / "x"))
    assert json.loads(got["openstack/latest/meta_data.json"]) == {"uuid": "u-1"}
    assert got["openstack/latest/user_data"] == b"ud"
    assert json.loads(got["openstack/latest/vendor_data.json"]) == "#cloud-config\n"
    assert json.loads(got["openstack/latest/network_data.json"]) == {"links": []}
    with pytest.raises(seeddisc.SeedDiscError, match="uuid"):
        seeddisc.make_config_drive_iso(tmp_path / "bad.iso", {"hostname": "x"})


def test_ovf_env_document_escapes_and_parses(tmp_path):
    xml = seeddisc.build_ovf_env({"instance-id": "o1", "password": 'a"<&>'}, user_data=b"\x00u")
    root = ET.fromstring(xml)
    assert root.tag == "{http://schemas.dmtf.org/ovf/environment/1}Environment"
    props = parse_properties(xml, "test")
    assert props["password"] == 'a"<&>'
    assert props["user-data"] == "AHU="
    image = seeddisc.make_ovf_iso(tmp_path / "o.iso", xml)
    assert probe(image)["TYPE"] == "iso9660"
    assert seeddisc.files_from_dir(seeddisc.extract_disc(image, tmp_path / "x")) == {
        "ovf-env.xml": xml}


def test_name_clash_and_bad_paths_are_refused(tmp_path):
    with pytest.raises(seeddisc.SeedDiscError, match="share the ISO9660 name"):
        seeddisc.make_iso(tmp_path / "a.iso", {"user-data": b"1", "user_data": b"2"}, "x")
    with pytest.raises(seeddisc.SeedDiscError, match="not a usable path"):
        seeddisc.make_iso(tmp_path / "b.iso", {"../etc": b"1"}, "x")


def test_files_from_dir(tmp_path):
    (tmp_path / "s/sub").mkdir(parents=True)
    (tmp_path / "s/meta-data").write_bytes(b"m")
    (tmp_path / "s/sub/f").write_bytes(b"f")
    assert seeddisc.files_from_dir(tmp_path / "s") == {"meta-data": b"m", "sub/f": b"f"}
    with pytest.raises(seeddisc.SeedDiscError):
        seeddisc.files_from_dir(tmp_path / "missing")


def test_lab_config_drive_dir_carries_network_data(tmp_path):
    from bootseed.image_builder.lab import BootLab, BootOptions

    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "meta_data.json").write_text(json.dumps({"uuid": "u-2"}))
    (seed / "user_data").write_bytes(b"#cloud-config\n")
    network = {"links": [{"id": "eth0", "type": "phy",
                          "ethernet_mac_address": "52:54:00:12:34:56"}],
               "networks": [{"id": "n0", "type": "ipv4_dhcp", "link": "eth0"}]}
    (seed / "network_data.json").write_text(json.dumps(network))
    [drive] = BootLab._make_seed_discs(seeddisc, BootOptions(config_drive_dir=seed), tmp_path)
    got = seeddisc.files_from_dir(seeddisc.extract_disc(drive.path, tmp_path / "x"))
    assert json.loads(got["openstack/latest/network_data.json"]) == network
    assert json.loads(got["openstack/latest/meta_data.json"]) == {"uuid": "u-2"}
    # Without the file, the disc has none (the source then has no network config).
    (seed / "network_data.json").unlink()
    second = tmp_path / "second"
    second.mkdir()
    [drive] = BootLab._make_seed_discs(seeddisc, BootOptions(config_drive_dir=seed), second)
    got = seeddisc.files_from_dir(seeddisc.extract_disc(drive.path, tmp_path / "z"))
    assert "openstack/latest/network_data.json" not in got
