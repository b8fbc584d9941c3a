"""End-to-end: one ``--firmware both`` image with its OVA, booted under OVMF and SeaBIOS.

One build (raw + OVA, on the shared lab base tree), two guests at once:

* the raw image under OVMF (UEFI) runs the fallback test of
  ``test_fallback.py``: the seed installs the fallback and breaks the default
  entry, GRUB counts the failed boots down in ``grubenv`` and boots the
  fallback entry by itself. That is a UEFI boot with a seed that is applied,
  and proof that GRUB EFI reads and writes the same environment block;
* the OVA taken apart as an importer would: its VMDK read by ``qemu-img`` as
  streamOptimized, converted back, and booted (SeaBIOS, what VMware and
  VirtualBox pick for it unless told otherwise) with an OVF ISO transport
  whose ``ovf-env.xml`` carries the descriptor's ProductSection properties
  filled in here; the guest reports the user-data and the key applied.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bootseed.image_builder.build import build_image
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult
from bootseed.image_builder.manifest import ImageManifest, manifest_path
from bootseed.image_builder.ova import OVF_NS, OVF_PROPERTIES
from bootseed.image_builder.seeddisc import build_ovf_env

from testsupport.labimage import lab_build_options

from .test_fallback import assert_fell_back_by_itself, broken_default_seed, fallback_boot_options

pytestmark = pytest.mark.boot

EFI_PLATFORM = "/sys/firmware/efi/fw_platform_size"
OVA_INSTANCE = "i-ova-0001"
OVA_HOSTNAME = "ova-imported"
OVA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKanpIu2TXMcNRQzTfAYE/Hjw2YCWRHKqp11HQosGeOR ova"
OVA_WRITTEN = "/var/tmp/ova-written"
OVA_MARKER = "/var/tmp/ova-runcmd-marker"
OVA_USER_DATA = f"""\
#cloud-config
write_files:
  - path: {OVA_WRITTEN}
    content: "from the OVF user-data property\\n"
runcmd:
  - [sh, -c, "echo ova-runcmd-ran > {OVA_MARKER}"]
"""
TIMEOUT = 1500.0


@pytest.fixture(scope="module")
def both_image(tmp_path_factory: pytest.TempPathFactory) -> ImageManifest:
    if os.geteuid() != 0:
        pytest.skip("the boot suite builds images with mmdebstrap --mode=root: run as root")
    out = tmp_path_factory.mktemp("uefi-image")
    return build_image(lab_build_options(out, firmware="both", formats=("raw", "ova")),
                       quiet=True)


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def _qemu_img(*args: str) -> str:
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def _unpack_ova(ova: Path, into: Path) -> tuple[bytes, Path]:
    """The descriptor and the extracted VMDK, read as an importer reads the tar."""
    with tarfile.open(ova) as tar:
        members = tar.getmembers()
        assert members[0].name.endswith(".ovf"), [m.name for m in members]
        descriptor = tar.extractfile(members[0])
        assert descriptor is not None
        (disk,) = [m for m in members if m.name.endswith(".vmdk")]
        assert disk.isfile() and "/" not in disk.name, disk.name
        source = tar.extractfile(disk)
        assert source is not None
        into.mkdir(parents=True, exist_ok=True)
        with open(into / disk.name, "wb") as target:
            shutil.copyfileobj(source, target, 4 * 1024 * 1024)
        return descriptor.read(), into / disk.name


def _filled_properties(descriptor: bytes) -> dict[str, str]:
    """Every ProductSection property, as a vSphere user would fill the form in."""
    ns = {"ovf": OVF_NS}
    root = ET.fromstring(descriptor)
    keys = [prop.get(f"{{{OVF_NS}}}key") or "" for prop in
            root.findall("ovf:VirtualSystem/ovf:ProductSection/ovf:Property", ns)]
    assert keys == [prop.key for prop in OVF_PROPERTIES]
    given = {
        "instance-id": OVA_INSTANCE,
        "hostname": OVA_HOSTNAME,
        "public-keys": OVA_KEY,
        "user-data": base64.b64encode(OVA_USER_DATA.encode()).decode(),
    }
    # The platform hands over every property, the ones left empty too.
    return {key: given.get(key, "") for key in keys}


def _ova_boot(manifest: ImageManifest, tmp_path: Path) -> tuple[BootLab, BootOptions]:
    entry = manifest.file("ova")
    assert entry is not None
    ova = Path(entry.path)
    descriptor, vmdk = _unpack_ova(ova, tmp_path / "ova")
    info = json.loads(_qemu_img("info", "--output=json", str(vmdk)))
    assert info["format"] == "vmdk"
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert info["virtual-size"] == manifest.file("raw").size  # type: ignore[union-attr]
    _qemu_img("check", "-f", "vmdk", str(vmdk))
    disk = tmp_path / "from-ova.qcow2"
    _qemu_img("convert", "-f", "vmdk", "-O", "qcow2", str(vmdk), str(disk))
    vmdk.unlink()
    # The lab finds the grubenv block through the build manifest beside the disk.
    shutil.copyfile(manifest_path(ova), manifest_path(disk))
    env = tmp_path / "ovf-env.xml"
    env.write_bytes(build_ovf_env(_filled_properties(descriptor)))
    options = BootOptions(ovf_file=env, timeout=TIMEOUT,
                          report_files=[OVA_WRITTEN, OVA_MARKER, EFI_PLATFORM])
    return BootLab(disk, tmp_path / "boots-ova"), options


def _assert_ova_seed_applied(result: BootResult) -> None:
    report = result.report
    assert report is not None and result.ok, _diagnose(result)
    status = report.status or {}
    assert status.get("source") == "ovf" and status.get("instance_id") == OVA_INSTANCE, \
        _diagnose(result)
    assert report.hostname == OVA_HOSTNAME
    assert report.file_bytes(OVA_WRITTEN) == b"from the OVF user-data property\n"
    assert report.file_bytes(OVA_MARKER) == b"ova-runcmd-ran\n"
    user = report.user("debian")
    assert user is not None and user["authorized_keys"] == [OVA_KEY], report.raw.get("users")
    # Booted by SeaBIOS: no EFI in the guest.
    assert report.file_bytes(EFI_PLATFORM) is None


def test_uefi_fallback_and_the_ova_booted_side_by_side(both_image: ImageManifest,
                                                        tmp_path: Path) -> None:
    assert both_image.firmware == "both"
    raw = both_image.file("raw")
    assert raw is not None
    uefi_lab = BootLab(Path(raw.path), tmp_path / "boots-uefi")
    uefi_options = fallback_boot_options(broken_default_seed(tmp_path), firmware="uefi",
                                         more_files=(EFI_PLATFORM,))
    ova_lab, ova_options = _ova_boot(both_image, tmp_path)
    runs = [(uefi_lab, uefi_options), (ova_lab, ova_options)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        uefi, ova = pool.map(lambda run: run[0].boot(run[1]), runs)

    # -- UEFI: the seed applied, and GRUB EFI's boot counting took the fallback ----------
    argv = json.loads((uefi.workdir / "qemu.argv.json").read_text())
    assert f"file={uefi.workdir / 'OVMF_VARS.fd'}" in " ".join(argv)
    assert_fell_back_by_itself(uefi)
    assert uefi.report is not None
    assert uefi.report.file_bytes(EFI_PLATFORM) == b"64\n", _diagnose(uefi)
    assert (uefi.report.status or {}).get("source") == "nocloud"
    assert uefi.report.hostname == "fbtest"

    # -- the OVA, converted back, booted with the OVF ISO transport ----------------------
    _assert_ova_seed_applied(ova)
