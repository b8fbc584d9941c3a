"""The OpenStack metadata service source, against the lab's mock on 127.0.0.1."""

import json

import pytest
from bootseed.early.discover import (
    discover,
    discover_local,
    discover_network,
    network_sources,
)
from bootseed.early.dmi import DmiInfo
from bootseed.image_builder.mocks.openstack import MockOpenStack
from bootseed.late.netconfig.source import from_seed

from .seedhelpers import isolated_config, make_dmi

UUID = "83679162-1378-4288-a2d4-70e13ec132aa"
META = {
    "uuid": UUID,
    "hostname": "web-1.novalocal",
    "name": "web-1",
    "availability_zone": "nova",
    "project_id": "p-42",
    "launch_index": 0,
    "public_keys": {"mykey": "ssh-ed25519 AAAAnova nova@x"},
}
NETWORK_DATA = {
    "links": [{"id": "tap1", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01",
               "mtu": 1450}],
    "networks": [{"id": "net0", "type": "ipv4", "link": "tap1", "ip_address": "10.0.0.5",
                  "netmask": "255.255.255.0",
                  "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0",
                              "gateway": "10.0.0.1"}]}],
    "services": [{"type": "dns", "address": "10.0.0.2"}],
}
USER_DATA = b"#cloud-config\nhostname: from-nova\n"


def files(**extra: bytes) -> dict[str, bytes]:
    found = {"meta_data.json": json.dumps(META).encode(), "user_data": USER_DATA,
             "network_data.json": json.dumps(NETWORK_DATA).encode()}
    found.update(extra)
    return found


def nova_config(tmp_path, nova, cmdline="ds=openstack", **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return isolated_config(tmp_path, cmdline, openstack_endpoints=[nova.url], **kw)


def test_full_seed_from_latest(tmp_path):
    vendor2 = json.dumps({"cloud-init": "#cloud-config\nruncmd: [dynamic]\n"}).encode()
    vendor1 = json.dumps("#cloud-config\nruncmd: [static]\n").encode()
    with MockOpenStack(files(**{"vendor_data2.json": vendor2,
                                "vendor_data.json": vendor1})) as nova:
        seed = discover(nova_config(tmp_path, nova))
        paths = [r.path for r in nova.requests]
    assert seed.source == "openstack" and seed.problems == [], seed.problems
    assert seed.instance_id == UUID and seed.location == nova.url
    md = seed.metadata
    assert md["local-hostname"] == "web-1.novalocal"
    assert md["public-keys"] == ["ssh-ed25519 AAAAnova nova@x"]
    assert (md["availability-zone"], md["project-id"]) == ("nova", "p-42")
    assert md["network-config-format"] == "openstack-network-data"
    assert md["openstack-metadata-service"]["version"] == "latest"
    assert seed.payloads["user-data"] == USER_DATA
    # The dynamic vendor-data wins over the static file.
    assert seed.payloads["vendor-data"] == b"#cloud-config\nruncmd: [dynamic]\n"
    assert seed.found["vendor-data"].endswith("/openstack/latest/vendor_data2.json")
    assert paths[0] == "/openstack/"
    assert all(p.startswith("/openstack/latest/") for p in paths[1:])
    # network_data.json reaches the renderer in OpenStack's format.
    network = from_seed(seed.payloads, seed.metadata, seed.source)
    assert network.parsed is not None and network.parsed.problems == []
    assert network.origin == "network_data.json"
    assert network.parsed.config.interfaces


def test_newest_dated_version_without_latest(tmp_path):
    vendor1 = json.dumps({"cloud-init": "#cloud-config\nruncmd: [static]\n"}).encode()
    vendor2 = json.dumps({"cloud-init": "#cloud-config\nruncmd: [dynamic]\n"}).encode()
    with MockOpenStack(files(**{"vendor_data.json": vendor1, "vendor_data2.json": vendor2}),
                       versions=("2013-04-04", "2015-10-15")) as nova:
        seed = discover(nova_config(tmp_path, nova))
    assert seed.source == "openstack", seed.problems
    assert seed.metadata["openstack-metadata-service"]["version"] == "2015-10-15"
    # 2015-10-15 has no vendor_data2.json yet: the static vendor-data is used.
    assert seed.payloads["vendor-data"] == b"#cloud-config\nruncmd: [static]\n"
    assert "network-config" in seed.payloads


def test_found_by_dmi_and_not_probed_off_cloud(tmp_path):
    with MockOpenStack(files()) as nova:
        off = discover(nova_config(tmp_path / "off", nova, cmdline=""))
        assert off.source == "none" and off.problems == []
        assert nova.requests == []
        assert [t.name for t in off.timings] == ["dmi", "discover"]
        dmi = make_dmi(tmp_path / "nova", product_name="OpenStack Nova")
        on = discover(nova_config(tmp_path, nova, cmdline="", dmi_dir=dmi))
    assert on.source == "openstack"


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, False),
    ({"product_name": "OpenStack Nova"}, True),
    ({"product_name": "OpenStack Compute"}, True),
    ({"sys_vendor": "OpenStack Foundation"}, True),
    ({"chassis_asset_tag": "HUAWEICLOUD"}, True),
    ({"chassis_asset_tag": "OpenStack Nova"}, True),
    ({"product_name": "Standard PC (Q35 + ICH9, 2009)", "sys_vendor": "QEMU"}, False),
])
def test_dmi_is_openstack(fields, expected):
    assert DmiInfo(**fields).is_openstack is expected


@pytest.mark.parametrize(("fields", "cmdline", "expected"), [
    ({}, "", ()),
    ({"product_name": "OpenStack Nova"}, "", ("openstack",)),
    ({"product_name": "OpenStack Nova"}, "ds=none", ()),
    ({"product_name": "OpenStack Nova"}, "bootseed.ds=nocloud", ()),
    ({}, "ds=openstack", ("openstack",)),
    ({}, "bootseed.ds=OpenStack", ("openstack",)),
    ({"sys_vendor": "Amazon EC2"}, "", ("ec2",)),
    ({}, "ds=nocloud;s=http://10.0.2.2/s/ cloud-config-url=http://h/c",
     ("nocloud-url", "cloud-config-url")),
    ({}, "ds=nocloud;s=/var/seed/", ()),
])
def test_network_sources(tmp_path, fields, cmdline, expected):
    cfg = isolated_config(tmp_path, cmdline, dmi_dir=make_dmi(tmp_path, **fields))
    assert network_sources(cfg) == expected


def test_local_search_leaves_the_service_to_the_network_search(tmp_path):
    dmi = make_dmi(tmp_path / "nova", product_name="OpenStack Nova")
    with MockOpenStack(files()) as nova:
        local = discover_local(nova_config(tmp_path, nova, cmdline="", dmi_dir=dmi))
        assert local.source == "none" and nova.requests == []
        found = discover_network(nova_config(tmp_path, nova, cmdline="", dmi_dir=dmi))
    assert found.source == "openstack" and found.stage == "network"


def test_no_service_and_broken_meta_data_are_problems(tmp_path):
    with MockOpenStack(files(), versions=()) as nova:
        seed = discover(nova_config(tmp_path / "a", nova))
    assert seed.source == "none"
    assert [p.message for p in seed.problems if "/openstack/" in p.where] == [
        "lists no usable version (neither latest nor a dated one)"]
    bad = {"meta_data.json": json.dumps({"hostname": "no-uuid"}).encode()}
    with MockOpenStack(bad) as nova:
        seed = discover(nova_config(tmp_path / "b", nova))
    assert seed.source == "none"
    assert any(p.where.endswith("/openstack/latest/meta_data.json")
               and "no uuid" in p.message for p in seed.problems), seed.problems


def test_nothing_listening_is_no_service(tmp_path):
    with MockOpenStack(files()) as nova:
        url = nova.url
    seed = discover(isolated_config(tmp_path, "ds=openstack", openstack_endpoints=[url]))
    assert seed.source == "none"
    assert any(p.where == url and "no metadata service" in p.message for p in seed.problems)


def test_seed_fetch_command_asks_the_given_endpoint(tmp_path, capsys):
    from bootseed.late.cli import main

    dmi = make_dmi(tmp_path, product_name="OpenStack Nova")
    with MockOpenStack(files()) as nova:
        rc = main(["seed", "fetch", "--json", "--cmdline", "", "--no-discs",
                   "--root", str(tmp_path), "--dmi-dir", dmi, "--ec2-endpoint", nova.url,
                   "--openstack-endpoint", nova.url])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "openstack" and doc["instance_id"] == UUID
