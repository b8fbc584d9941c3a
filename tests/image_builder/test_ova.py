"""The OVA and VMDK, checked against the OVF packaging rules and qemu-img.

Rules (DSP0243): an OVA is a USTAR tar whose first member is the descriptor;
the manifest comes right after it or last; every References/File has a
member of that name and declared size; ids are unique; the manifest holds
``SHA256(name)= hex`` for every other member.
"""

import base64
import hashlib
import json
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bootseed.contract.cmdline import SeedParams
from bootseed.early.budget import Budget
from bootseed.early.sources import ovf as ovf_source
from bootseed.early.sources.base import Context
from bootseed.image_builder import ova, seeddisc
from bootseed.image_builder.mocks.static import StaticServer

OVF = "{http://schemas.dmtf.org/ovf/envelope/1}"
RASD = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}"
MIB = 1 << 20
MARKS = {0: b"bootseed-start", 5 * MIB + 17: b"middle \x00\xff bytes", 64 * MIB - 8: b"the-end!"}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 64 MiB sparse raw disk with known bytes, its VMDK and its OVA."""
    work = tmp_path_factory.mktemp("ova")
    raw = work / "small.raw"
    with open(raw, "wb") as handle:
        handle.truncate(64 * MIB)
        for offset, data in MARKS.items():
            handle.seek(offset)
            handle.write(data)
    vmdk = work / "small.vmdk"
    ova.convert_to_vmdk(raw, vmdk)
    image = work / "small.ova"
    ova.write_ova(image, ova.Appliance(name="small", cpus=2, memory_mib=512), vmdk,
                  ova.virtual_size(raw))
    return raw, vmdk, image


def _members(image: Path) -> dict[str, bytes]:
    with tarfile.open(image) as tar:
        out = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None, member.name
            out[member.name] = handle.read()
        return out


def _descriptor(image: Path) -> ET.Element:
    with tarfile.open(image) as tar:
        first = tar.getmembers()[0]
        handle = tar.extractfile(first)
        assert handle is not None
        return ET.fromstring(handle.read())


def test_tar_is_ustar_with_descriptor_first_and_manifest_last(package):
    _, _, image = package
    with open(image, "rb") as handle:
        assert handle.read(512)[257:263] == b"ustar\x00"
    with tarfile.open(image) as tar:
        names = tar.getnames()
    assert names == ["small.ovf", "small.vmdk", "small.mf"]


def test_every_referenced_file_is_a_member_of_the_declared_size(package):
    _, _, image = package
    members = _members(image)
    files = _descriptor(image).findall(f"{OVF}References/{OVF}File")
    assert files
    for file in files:
        href = file.get(f"{OVF}href")
        assert href in members
        assert int(file.get(f"{OVF}size", "-1")) == len(members[href])


def test_manifest_digests_match_every_other_member(package):
    _, _, image = package
    members = _members(image)
    lines = members["small.mf"].decode().splitlines()
    listed = {}
    for line in lines:
        left, digest = line.split("= ")
        assert left.startswith("SHA256(") and left.endswith(")")
        listed[left[len("SHA256("):-1]] = digest
    assert set(listed) == {"small.ovf", "small.vmdk"}
    for name, digest in listed.items():
        assert hashlib.sha256(members[name]).hexdigest() == digest


def test_ids_are_unique_and_references_resolve(package):
    _, _, image = package
    root = _descriptor(image)
    file_ids = [f.get(f"{OVF}id") for f in root.iter(f"{OVF}File")]
    disks = root.findall(f"{OVF}DiskSection/{OVF}Disk")
    disk_ids = [d.get(f"{OVF}diskId") for d in disks]
    items = list(root.iter(f"{OVF}Item"))
    instance_ids = [i.findtext(f"{RASD}InstanceID") for i in items]
    for ids in (file_ids, disk_ids, instance_ids):
        assert len(ids) == len(set(ids)) and None not in ids
    assert {d.get(f"{OVF}fileRef") for d in disks} <= set(file_ids)
    networks = {n.get(f"{OVF}name") for n in root.iter(f"{OVF}Network")}
    parents = {i.findtext(f"{RASD}Parent") for i in items} - {None}
    assert parents <= set(instance_ids)
    for item in items:
        host = item.findtext(f"{RASD}HostResource")
        if host is not None:
            assert host.removeprefix("ovf:/disk/") in disk_ids
        connection = item.findtext(f"{RASD}Connection")
        if connection is not None:
            assert connection in networks


def test_hardware_and_disk_section(package):
    raw, _, image = package
    root = _descriptor(image)
    disk = root.find(f"{OVF}DiskSection/{OVF}Disk")
    assert disk is not None
    assert int(disk.get(f"{OVF}capacity", "0")) == raw.stat().st_size
    assert disk.get(f"{OVF}format", "").endswith("vmdk.html#streamOptimized")
    system = root.find(f"{OVF}VirtualSystem")
    assert system is not None
    assert system.find(f"{OVF}OperatingSystemSection") is not None
    hardware = system.find(f"{OVF}VirtualHardwareSection")
    assert hardware is not None and hardware.get(f"{OVF}transport") == "iso"
    by_type = {i.findtext(f"{RASD}ResourceType"): i for i in hardware.iter(f"{OVF}Item")}
    assert by_type["3"].findtext(f"{RASD}VirtualQuantity") == "2"
    assert by_type["4"].findtext(f"{RASD}VirtualQuantity") == "512"
    assert {"6", "10", "17"} <= set(by_type)


def test_product_properties_are_the_ones_bootseeds_ovf_source_reads(package):
    """Values set for the declared keys come out of the early stage's OVF source."""
    _, _, image = package
    root = _descriptor(image)
    props = root.findall(f"{OVF}VirtualSystem/{OVF}ProductSection/{OVF}Property")
    keys = [p.get(f"{OVF}key") for p in props]
    assert keys == ["instance-id", "hostname", "public-keys", "user-data", "password",
                    "seedfrom"]
    assert all(p.get(f"{OVF}userConfigurable") == "true" for p in props)
    user_data = b"#cloud-config\nruncmd: [true]\n"
    values = {"instance-id": "iid-ova", "hostname": "ovabox",
              "public-keys": "ssh-ed25519 AAAA k", "password": "pw",
              "user-data": base64.b64encode(user_data).decode()}
    env = seeddisc.build_ovf_env(values)
    ctx = Context(Budget(5))
    seed = ovf_source.from_env(ctx, env, "ovf-env.xml", SeedParams())
    assert seed.instance_id == "iid-ova"
    assert seed.metadata["local-hostname"] == "ovabox"
    assert seed.metadata["public-keys"] == ["ssh-ed25519 AAAA k"]
    assert seed.metadata["sensitive"] == {"password": "pw"}
    assert seed.payloads["user-data"] == user_data


def test_seedfrom_property_is_fetched_by_the_ovf_source(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "meta-data").write_text("instance-id: remote\nlocal-hostname: fromurl\n")
    (www / "user-data").write_bytes(b"#cloud-config\n")
    with StaticServer(www) as srv:
        env = seeddisc.build_ovf_env({"seedfrom": f"{srv.url}/"})
        seed = ovf_source.from_env(Context(Budget(5)), env, "ovf-env.xml", SeedParams())
    assert seed.metadata["local-hostname"] == "fromurl"
    assert seed.payloads["user-data"] == b"#cloud-config\n"


def _qemu_info(path: Path) -> dict:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def test_vmdk_is_stream_optimized_and_converts_back_to_the_same_bytes(package, tmp_path):
    raw, vmdk, image = package
    info = _qemu_info(vmdk)
    assert info["format"] == "vmdk"
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert info["virtual-size"] == raw.stat().st_size
    # The VMDK inside the OVA is the same file.
    assert _members(image)["small.vmdk"] == vmdk.read_bytes()
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(vmdk), str(back)],
                   check=True)
    assert back.stat().st_size == raw.stat().st_size
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(
        raw.read_bytes()).digest()
    with open(back, "rb") as handle:
        for offset, data in MARKS.items():
            handle.seek(offset)
            assert handle.read(len(data)) == data
