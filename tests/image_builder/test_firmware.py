"""--firmware bios|uefi|both: the disk layout, the ESP, GRUB EFI, and how the lab boots it."""

import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from bootseed.image_builder import cli, disk, grub, ova, qemu, rootfs
from bootseed.image_builder.lab import BootLab, BootOptions, LabError
from bootseed.image_builder.manifest import ImageFile, ImageManifest, write_manifest

ESP_SECTORS = disk.ESP_BYTES // disk.SECTOR


@pytest.mark.parametrize(
    ("firmware", "esp_start", "root_start"),
    [("bios", None, 4096), ("uefi", 2048, 2048 + ESP_SECTORS),
     ("both", 4096, 4096 + ESP_SECTORS)],
)
def test_layout_per_firmware(firmware, esp_start, root_start):
    layout = disk.DiskLayout(root_bytes=disk.GIB, firmware=firmware)
    assert layout.root_start == root_start
    assert layout.has_bios_boot == (firmware != "uefi")
    assert layout.has_esp == (esp_start is not None)
    if esp_start is not None:
        assert layout.esp_start == esp_start and layout.esp_sectors == ESP_SECTORS


def test_layout_refuses_an_unknown_firmware():
    with pytest.raises(disk.DiskError, match="unknown firmware 'coreboot'"):
        disk.DiskLayout(root_bytes=disk.GIB, firmware="coreboot")


def _table(image: Path) -> list[list[str]]:
    out = subprocess.run(["sgdisk", "-p", str(image)], capture_output=True, text=True,
                         check=True).stdout
    rows = out.split("Number", 1)[1].splitlines()[1:]
    return [row.split() for row in rows if row.strip()]


def test_both_disk_has_bios_boot_esp_and_root_with_grub_efi_on_the_esp(tmp_path: Path):
    layout = disk.DiskLayout(root_bytes=32 * disk.MIB, firmware="both")
    image = tmp_path / "disk.raw"
    disk.write_partition_table(image, layout)
    rows = _table(image)
    assert [(r[0], r[1], r[5], r[6]) for r in rows] == [
        ("1", "2048", "EF02", "bios-boot"),
        ("2", str(layout.esp_start), "EF00", "efi-system"),
        ("3", str(layout.root_start), "8300", disk.ROOT_PARTITION_NAME),
    ]
    efi = grub.make_efi_image(tmp_path / "BOOTX64.EFI", "test-root")
    disk.write_esp(image, layout, {grub.EFI_BOOT_PATH: efi}, tmp_path)
    esp = f"{image}@@{layout.esp_start * disk.SECTOR}"
    copied = subprocess.run(["mtype", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI"],
                            capture_output=True, check=True).stdout
    assert copied == efi.read_bytes()
    label = subprocess.run(["blkid", "-p", "-O", str(layout.esp_start * disk.SECTOR),
                            "-s", "TYPE", "-o", "value", str(image)], capture_output=True,
                           text=True)
    assert label.stdout.strip() == "vfat"
    # Only the ESP's written MiBs take space: the file stays sparse.
    assert disk.allocated_bytes(image) < layout.esp_bytes
    with pytest.raises(disk.DiskError, match="no EFI system partition"):
        disk.write_esp(image, replace(layout, firmware="bios"), {}, tmp_path)


def test_uefi_only_disk_has_no_bios_boot_partition(tmp_path: Path):
    layout = disk.DiskLayout(root_bytes=32 * disk.MIB, firmware="uefi")
    image = tmp_path / "disk.raw"
    disk.write_partition_table(image, layout)
    assert [r[5] for r in _table(image)] == ["EF00", "8300"]


def test_grub_efi_image_is_a_pe_application_with_the_label_search(tmp_path: Path):
    data = grub.make_efi_image(tmp_path / "BOOTX64.EFI", "my-root").read_bytes()
    assert data[:2] == b"MZ"
    pe_offset = int.from_bytes(data[0x3C:0x40], "little")
    assert data[pe_offset:pe_offset + 4] == b"PE\0\0"
    # IMAGE_FILE_MACHINE_AMD64
    assert data[pe_offset + 4:pe_offset + 6] == b"\x64\x86"
    assert grub.early_config("my-root").encode() in data
    assert "biosdisk" not in grub.EFI_CORE_MODULES


def test_grub_cfg_keeps_the_bios_terminal_and_gives_efi_the_serial_port_alone():
    bios = grub.grub_cfg("bootseed-root", "quiet")
    assert "grub_platform" not in bios
    assert "terminal_output serial console\n" in bios
    both = grub.grub_cfg("bootseed-root", "quiet", firmware="both")
    efi_branch = both.split('if [ "$grub_platform" = efi ]; then\n', 1)[1].split("else", 1)[0]
    assert efi_branch == "  terminal_input serial\n  terminal_output serial\n"
    # Everything after the terminal set-up (environment, entry) is the same text.
    assert both.split("set timeout=0", 1)[1] == bios.split("set timeout=0", 1)[1]


@pytest.mark.parametrize(("firmware", "platforms"),
                         [("bios", ["i386-pc"]), ("uefi", ["x86_64-efi"]),
                          ("both", ["i386-pc", "x86_64-efi"])])
def test_grub_files_carry_the_modules_of_each_firmware(tmp_path: Path, firmware, platforms):
    rootfs.install_grub_files(tmp_path, "bootseed-root", "quiet", firmware=firmware)
    boot_grub = tmp_path / "boot/grub"
    assert sorted(p.name for p in boot_grub.iterdir() if p.is_dir()) == platforms
    for platform in platforms:
        assert (boot_grub / platform / "loadenv.mod").is_file()
    assert (boot_grub / "grubenv").stat().st_size == grub.GRUBENV_SIZE


def test_uefi_vm_gets_ovmf_as_pflash_and_boots_its_disk_first(tmp_path: Path):
    firmware = qemu.UefiFirmware(code=qemu.OVMF_CODE, variables=tmp_path / "vars.fd")
    spec = qemu.VmSpec(
        drives=[qemu.Drive(tmp_path / "d.qcow2", bootindex=0),
                qemu.Drive(tmp_path / "seed.iso", fmt="raw", interface="ide", media="cdrom",
                           readonly=True)],
        nic=None, console_log=tmp_path / "console.log", uefi=firmware)
    argv = spec.argv()
    assert argv[argv.index("-accel") + 1] == "tcg"
    pflash = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive" and "pflash" in argv[i + 1]]
    assert pflash == [f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.OVMF_CODE}",
                      f"if=pflash,format=raw,unit=1,file={tmp_path / 'vars.fd'}"]
    disk_at = argv.index(f"file={tmp_path / 'd.qcow2'},format=qcow2,if=none,id=drive0,"
                         "media=disk,cache=unsafe")
    assert argv[disk_at + 1:disk_at + 3] == ["-device",
                                             "virtio-blk-pci,drive=drive0,bootindex=0"]
    assert f"file={tmp_path / 'seed.iso'},format=raw,if=ide,media=cdrom,cache=unsafe," \
           "readonly=on" in argv
    with pytest.raises(ValueError, match="virtio"):
        qemu.Drive(tmp_path / "x.iso", interface="ide", bootindex=1).arguments(0)
    assert "pflash" not in " ".join(replace(spec, uefi=None).argv())


def _image_with_manifest(tmp_path: Path, firmware: str) -> Path:
    image = tmp_path / f"{firmware}.raw"
    image.write_bytes(b"")
    write_manifest(ImageManifest(
        name="t", files=[ImageFile(str(image), "raw", 1, 1, "")], root_label="r",
        root_fs_uuid="u", root_size=1, root_offset=2097152, grubenv_offset=4096,
        kernel_version="6.1", kernel_args="", base_key="k", base_reused=True,
        bootseed_debs=[], initramfs_hook=False, packages={}, firmware=firmware), image)
    return image


@pytest.mark.parametrize(("image_firmware", "asked", "booted"),
                         [("bios", "", "bios"), ("uefi", "", "uefi"), ("both", "", "bios"),
                          ("both", "uefi", "uefi"), ("both", "bios", "bios")])
def test_lab_picks_the_firmware_the_image_boots_on(tmp_path: Path, image_firmware, asked,
                                                   booted):
    lab = BootLab(_image_with_manifest(tmp_path, image_firmware), tmp_path / "boots")
    assert lab.firmware(BootOptions(firmware=asked)) == booted


@pytest.mark.parametrize(("image_firmware", "asked"), [("bios", "uefi"), ("uefi", "bios"),
                                                       ("both", "coreboot")])
def test_lab_refuses_a_firmware_the_image_cannot_boot(tmp_path: Path, image_firmware, asked):
    lab = BootLab(_image_with_manifest(tmp_path, image_firmware), tmp_path / "boots")
    with pytest.raises(LabError, match=f"is a {image_firmware} image"):
        lab.firmware(BootOptions(firmware=asked))


def test_cli_refuses_an_unknown_firmware(capsys):
    with pytest.raises(SystemExit):
        cli.main(["build", "--firmware", "coreboot"])
    assert "invalid choice: 'coreboot'" in capsys.readouterr().err


@pytest.mark.parametrize(("firmware", "efi"), [("bios", False), ("both", False), ("uefi", True)])
def test_ova_descriptor_asks_for_efi_only_for_a_uefi_only_disk(firmware, efi):
    xml = ova.ovf_descriptor(ova.Appliance(name="t", firmware=firmware), "t.vmdk", 10, 20)
    configs = ET.fromstring(xml).findall(
        f"{{{ova.OVF_NS}}}VirtualSystem/{{{ova.OVF_NS}}}VirtualHardwareSection/"
        f"{{{ova.VMW_NS}}}Config")
    found = [(c.get(f"{{{ova.VMW_NS}}}key"), c.get(f"{{{ova.VMW_NS}}}value"),
              c.get(f"{{{ova.OVF_NS}}}required")) for c in configs]
    assert found == ([("firmware", "efi", "false")] if efi else [])


def test_boot_of_a_bios_image_with_uefi_is_a_one_line_error(tmp_path: Path, capsys):
    image = _image_with_manifest(tmp_path, "bios")
    assert cli.main(["boot", str(image), "--firmware", "uefi",
                     "--workdir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert "is a bios image: it cannot boot with 'uefi' firmware" in err
    # Refused before anything was made for the boot.
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
