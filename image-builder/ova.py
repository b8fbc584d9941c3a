"""VMDK and OVA from a raw image: ``bootseed-image build --format vmdk|ova``.

The VMDK is ``streamOptimized`` (compressed, one pass readable: what OVF
consumers import). The OVA is a USTAR tar holding, in this order, the OVF
descriptor, the VMDK and a manifest of ``SHA256(name)= hex`` lines: the
descriptor must come first so a reader finds it without scanning the archive;
the manifest may go second or last, and last lets it be written after the
digests of everything before it are known.

The descriptor (OVF 1.0 envelope, our own template) declares one disk on a
SCSI controller, one NIC, the OVF environment delivered on an ISO (the
transport the early stage reads, ``early/sources/ovf.py``) and a
ProductSection whose property keys are exactly the ones that source reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bootseed.image_builder.procrun import run

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"
RASD_NS = ("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
           "CIM_ResourceAllocationSettingData")
VSSD_NS = ("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
           "CIM_VirtualSystemSettingData")
# VMware's extension namespace: its "firmware" setting is what vSphere and
# Workstation read to start an imported VM with EFI instead of BIOS.
VMW_NS = "http://www.vmware.com/schema/ovf"
STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
# CIM_OperatingSystem.OsType 96: "Debian 64-Bit".
DEBIAN_64_OS_TYPE = "96"
NETWORK_NAME = "VM Network"
DISK_ID = "vmdisk1"
DISK_FILE_ID = "file1"


@dataclass(frozen=True)
class OvfProperty:
    key: str
    label: str
    description: str


# The keys early/sources/ovf.py reads from ovf-env.xml; a test keeps them in step.
OVF_PROPERTIES = (
    OvfProperty("instance-id", "Instance ID",
                "unique id of this instance; a new one makes bootseed run first-boot again"),
    OvfProperty("hostname", "Hostname", "host name of the machine"),
    OvfProperty("public-keys", "SSH public keys", "authorized SSH keys for the default user"),
    OvfProperty("user-data", "User data (base64)", "base64 of the user-data (cloud-config, "
                "script, MIME multipart)"),
    OvfProperty("password", "Default user password", "password of the default user"),
    OvfProperty("seedfrom", "Seed URL", "URL of a NoCloud seed (meta-data, user-data)"),
)

# rasd:ResourceType values (CIM_ResourceAllocationSettingData).
PROCESSOR, MEMORY, SCSI_CONTROLLER, ETHERNET, DISK_DRIVE = "3", "4", "6", "10", "17"


@dataclass(frozen=True)
class Appliance:
    """What the descriptor says about the virtual machine."""

    name: str
    cpus: int = 1
    memory_mib: int = 1024
    product: str = "bootseed Debian bookworm"
    version: str = ""
    # The image's firmware (manifest.FIRMWARES): only a UEFI-only disk needs the
    # importer told; a "both" disk boots on the BIOS importers pick by default.
    firmware: str = "bios"


@dataclass(frozen=True)
class OvaMember:
    name: str
    size: int
    sha256: str


def convert_to_vmdk(raw: Path, out: Path, log: IO[str] | None = None) -> None:
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
         str(raw), str(out)], log=log, timeout=1800)


def virtual_size(image: Path, log: IO[str] | None = None) -> int:
    """The disk size a guest sees (``qemu-img info``), whatever the file's format."""
    info = json.loads(run(["qemu-img", "info", "--output=json", str(image)], log=log,
                          timeout=60))
    return int(info["virtual-size"])


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _sub(parent: ET.Element, ns: str, tag: str, text: str | None = None,
         **attrs: str) -> ET.Element:
    """A child element; ``attrs`` become ``ovf:``-qualified attributes."""
    element = ET.SubElement(parent, _q(ns, tag), {_q(OVF_NS, k): v for k, v in attrs.items()})
    if text is not None:
        element.text = text
    return element


def _section(parent: ET.Element, tag: str, info: str, **attrs: str) -> ET.Element:
    section = _sub(parent, OVF_NS, tag, **attrs)
    _sub(section, OVF_NS, "Info", info)
    return section


def _item(hardware: ET.Element, instance_id: int, resource_type: str, element_name: str,
          **fields: str) -> None:
    item = _sub(hardware, OVF_NS, "Item")
    # rasd elements must appear in alphabetical order (the CIM schema's sequence).
    values = dict(fields, ElementName=element_name, InstanceID=str(instance_id),
                  ResourceType=resource_type)
    for name in sorted(values):
        _sub(item, RASD_NS, name, values[name])


def ovf_descriptor(appliance: Appliance, vmdk_name: str, vmdk_size: int,
                   capacity: int) -> bytes:
    """The ``.ovf`` XML for one VM with one streamOptimized disk."""
    ET.register_namespace("ovf", OVF_NS)
    ET.register_namespace("rasd", RASD_NS)
    ET.register_namespace("vssd", VSSD_NS)
    ET.register_namespace("vmw", VMW_NS)
    envelope = ET.Element(_q(OVF_NS, "Envelope"))
    references = _sub(envelope, OVF_NS, "References")
    _sub(references, OVF_NS, "File", id=DISK_FILE_ID, href=vmdk_name, size=str(vmdk_size))

    disks = _section(envelope, "DiskSection", "Virtual disks")
    _sub(disks, OVF_NS, "Disk", diskId=DISK_ID, fileRef=DISK_FILE_ID, capacity=str(capacity),
         format=STREAM_OPTIMIZED)

    networks = _section(envelope, "NetworkSection", "Logical networks")
    network = _sub(networks, OVF_NS, "Network", name=NETWORK_NAME)
    _sub(network, OVF_NS, "Description", "The network the NIC connects to")

    system = _sub(envelope, OVF_NS, "VirtualSystem", id=appliance.name)
    _sub(system, OVF_NS, "Info", "A Debian bookworm machine configured by bootseed")
    _sub(system, OVF_NS, "Name", appliance.name)
    os_section = _section(system, "OperatingSystemSection", "Guest operating system",
                          id=DEBIAN_64_OS_TYPE)
    _sub(os_section, OVF_NS, "Description", "Debian GNU/Linux 12 (bookworm) 64-bit")

    # transport="iso": the platform hands ovf-env.xml over on a CD, which
    # bootseed's OVF source reads.
    hardware = _section(system, "VirtualHardwareSection", "Virtual hardware", transport="iso")
    vsystem = _sub(hardware, OVF_NS, "System")
    for name, value in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                        ("VirtualSystemIdentifier", appliance.name),
                        ("VirtualSystemType", "vmx-10")):
        _sub(vsystem, VSSD_NS, name, value)
    _item(hardware, 1, PROCESSOR, f"{appliance.cpus} virtual CPU(s)",
          AllocationUnits="hertz * 10^6", VirtualQuantity=str(appliance.cpus))
    _item(hardware, 2, MEMORY, f"{appliance.memory_mib} MB of memory",
          AllocationUnits="byte * 2^20", VirtualQuantity=str(appliance.memory_mib))
    _item(hardware, 3, SCSI_CONTROLLER, "SCSI controller 0", Address="0",
          ResourceSubType="lsilogic")
    _item(hardware, 4, DISK_DRIVE, "Hard disk 1", AddressOnParent="0",
          HostResource=f"ovf:/disk/{DISK_ID}", Parent="3")
    _item(hardware, 5, ETHERNET, "Network adapter 1", AutomaticAllocation="true",
          Connection=NETWORK_NAME, ResourceSubType="VmxNet3")
    if appliance.firmware == "uefi":
        ET.SubElement(hardware, _q(VMW_NS, "Config"), {
            _q(OVF_NS, "required"): "false", _q(VMW_NS, "key"): "firmware",
            _q(VMW_NS, "value"): "efi"})

    product = _section(system, "ProductSection", "Seed for bootseed's OVF source")
    _sub(product, OVF_NS, "Product", appliance.product)
    _sub(product, OVF_NS, "Vendor", "bootseed")
    if appliance.version:
        _sub(product, OVF_NS, "Version", appliance.version)
    for prop in OVF_PROPERTIES:
        element = _sub(product, OVF_NS, "Property", key=prop.key, type="string",
                       userConfigurable="true", value="")
        _sub(element, OVF_NS, "Label", prop.label)
        _sub(element, OVF_NS, "Description", prop.description)

    ET.indent(envelope)
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=True) + b"\n"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def manifest_text(members: list[OvaMember]) -> bytes:
    return "".join(f"SHA256({m.name})= {m.sha256}\n" for m in members).encode()


def write_ova(ova: Path, appliance: Appliance, vmdk: Path, capacity: int) -> list[OvaMember]:
    """Write ``ova`` (descriptor, ``vmdk``, manifest) and return its members in order."""
    stem = ova.stem
    descriptor = ovf_descriptor(appliance, vmdk.name, vmdk.stat().st_size, capacity)
    ovf_member = OvaMember(f"{stem}.ovf", len(descriptor), hashlib.sha256(descriptor).hexdigest())
    disk_member = OvaMember(vmdk.name, vmdk.stat().st_size, _sha256(vmdk))
    manifest = manifest_text([ovf_member, disk_member])
    mf_member = OvaMember(f"{stem}.mf", len(manifest), hashlib.sha256(manifest).hexdigest())
    tmp = ova.with_name(ova.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tar.gettarinfo(str(vmdk), arcname=vmdk.name)
        _normalise(info)
        _add_bytes(tar, ovf_member.name, descriptor, info.mtime)
        with open(vmdk, "rb") as handle:
            tar.addfile(info, handle)
        _add_bytes(tar, mf_member.name, manifest, info.mtime)
    tmp.rename(ova)
    return [ovf_member, disk_member, mf_member]


def _normalise(info: tarfile.TarInfo) -> None:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o644


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    _normalise(info)
    tar.addfile(info, io.BytesIO(data))
