"""DMI (SMBIOS) facts from sysfs, read once and cheaply.

Network sources are probed only where the platform says it is that cloud, so
an off-cloud machine never waits on a metadata service that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DMI_DIR = "/sys/class/dmi/id"
_FIELDS = ("sys_vendor", "product_name", "product_uuid", "product_serial", "board_asset_tag",
           "chassis_asset_tag", "bios_vendor", "bios_version")

OPENSTACK_PRODUCTS = ("OpenStack Nova", "OpenStack Compute")
OPENSTACK_VENDOR = "OpenStack Foundation"
OPENSTACK_ASSET_TAGS = ("OpenTelekomCloud", "SAP CCloud VM", "HUAWEICLOUD")


@dataclass(frozen=True)
class DmiInfo:
    sys_vendor: str = ""
    product_name: str = ""
    product_uuid: str = ""
    product_serial: str = ""
    board_asset_tag: str = ""
    chassis_asset_tag: str = ""
    bios_vendor: str = ""
    bios_version: str = ""

    @property
    def is_ec2(self) -> bool:
        """Amazon EC2: Nitro says so in the vendor strings and puts the instance id in
        the board asset tag; Xen-era instances have a product uuid starting "ec2"."""
        vendors = f"{self.sys_vendor} {self.bios_vendor}".lower()
        if "amazon ec2" in vendors:
            return True
        if self.board_asset_tag.startswith("i-") and "amazon" in vendors:
            return True
        return self.product_uuid.lower().startswith("ec2")

    @property
    def is_openstack(self) -> bool:
        """OpenStack Nova: its SMBIOS product name (``OpenStack Nova``, or ``OpenStack
        Compute`` on older releases) or manufacturer (``OpenStack Foundation``), or one of
        the chassis asset tags clouds built on it set instead."""
        if self.product_name in OPENSTACK_PRODUCTS or self.sys_vendor == OPENSTACK_VENDOR:
            return True
        return self.chassis_asset_tag in OPENSTACK_PRODUCTS + OPENSTACK_ASSET_TAGS


def read_dmi(directory: str = DEFAULT_DMI_DIR) -> DmiInfo:
    """Whatever of the known fields is readable; unreadable ones are empty
    (``product_uuid`` is root-only, and containers have no DMI at all)."""
    base = Path(directory)
    values: dict[str, str] = {}
    for name in _FIELDS:
        try:
            values[name] = (base / name).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            values[name] = ""
    return DmiInfo(**values)
