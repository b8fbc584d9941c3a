"""Turn a copy of the cached base tree into the image's root filesystem tree.

Each step is a function of (tree, inputs) so the build can time and report
them one by one:

* :func:`copy_base` - a fresh copy of the base tree (``cp -a``, ~2 s)
* :func:`configure_system` - hostname, fstab, DHCP for ``en*``/``eth*``,
  machine-id reset, per-instance SSH host keys removed (regenerated on first
  boot), resolv.conf emptied
* :func:`install_lab_files` - the lab report script (with its copy of
  ``bootseed.contract``) and its (inert unless ``bootseed.lab=1``) unit
* :func:`install_grub_files` - grub.cfg, grubenv, GRUB modules

bootseed itself comes from its Debian packages: see :mod:`debinstall`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import IO

from bootseed import contract
from bootseed.image_builder import grub
from bootseed.image_builder.procrun import run

LAB_DIR = "/usr/lib/bootseed-lab"
DEFAULT_HOSTNAME = "debian"
GUEST_FILES = Path(__file__).resolve().parent / "guest"
CONTRACT_FILES = Path(contract.__file__).resolve().parent

NETWORK_FILE = """\
# Image default: DHCP on the first wired NIC. bootseed writes its own
# configuration with a lower number when the seed has network-config.
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
IPv6AcceptRA=no
LinkLocalAddressing=no

[DHCPv4]
UseDomains=yes
"""

SSH_KEYGEN_DROPIN = """\
# Host keys are per instance: the image ships none. bootseed's SSH module
# writes them before sshd starts; this only fills in any key type still missing.
# The empty line resets ExecStartPre so the keys exist before "sshd -t".
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
"""

LAB_NETWORK_FILE = """\
# Boot lab only: matches when the kernel command line has bootseed.lab=1.
# QEMU's restricted user network offers no gateway over DHCP, so without
# this the guest has no default route at all. A default route bound to the
# device is enough there: every lab server is on the link.
[Match]
Name=en* eth*
KernelCommandLine=bootseed.lab=1

[Network]
DHCP=ipv4
DefaultRouteOnDevice=yes
IPv6AcceptRA=no
LinkLocalAddressing=no
"""

class RootfsError(Exception):
    """The image tree could not be assembled."""


def copy_base(base_root: Path, tree: Path, log: IO[str] | None = None) -> None:
    if tree.exists():
        shutil.rmtree(tree)
    tree.parent.mkdir(parents=True, exist_ok=True)
    run(["cp", "-a", "--reflink=auto", str(base_root), str(tree)], log=log, timeout=900)


def _write(tree: Path, rel: str, text: str, mode: int = 0o644) -> Path:
    path = tree / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)
    return path


def configure_system(tree: Path, root_label: str, hostname: str = DEFAULT_HOSTNAME,
                     log: IO[str] | None = None) -> None:
    _write(tree, "/etc/hostname", hostname + "\n")
    _write(tree, "/etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
           "::1\tlocalhost ip6-localhost ip6-loopback\n")
    _write(tree, "/etc/fstab", f"LABEL={root_label}\t/\text4\terrors=remount-ro\t0\t1\n")
    # "uninitialized" makes the first boot a first boot for systemd too
    # (ConditionFirstBoot, a fresh machine-id per instance).
    _write(tree, "/etc/machine-id", "uninitialized\n", 0o444)
    dbus_id = tree / "var/lib/dbus/machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    _write(tree, "/etc/resolv.conf", "")
    _write(tree, "/etc/systemd/network/90-bootseed-default.network", NETWORK_FILE)
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(tree, "/etc/systemd/system/ssh.service.d/bootseed-host-keys.conf", SSH_KEYGEN_DROPIN)
    run(["systemctl", f"--root={tree}", "enable", "systemd-networkd.service"], log=log)
    # The first-boot wizard would wait on the console for answers nobody
    # gives; bootseed configures the instance instead.
    run(["systemctl", f"--root={tree}", "mask", "systemd-firstboot.service"], log=log)


INITRAMFS_SSH_KEYS = "/etc/bootseed/initramfs-authorized-keys"


def install_initramfs_ssh_keys(tree: Path, keys: tuple[str, ...]) -> Path | None:
    """The image's fallback keys for the initramfs SSH server; the initramfs hook copies
    the file in. Public keys only: the server's host keys are made at boot, per instance.
    ValueError names a line that is not an OpenSSH public key."""
    if not keys:
        return None
    from bootseed.early.sshdkeys import checked_key

    lines = []
    for number, key in enumerate(keys, 1):
        checked = checked_key(key)
        if checked is None:
            raise ValueError(f"initramfs SSH key {number} is not an OpenSSH public key")
        lines.append(checked)
    return _write(tree, INITRAMFS_SSH_KEYS, "".join(f"{line}\n" for line in lines))


def install_lab_files(tree: Path, log: IO[str] | None = None) -> None:
    lab = tree / LAB_DIR.lstrip("/")
    install_report_script(lab)
    _write(tree, "/etc/systemd/network/80-bootseed-lab.network", LAB_NETWORK_FILE)
    unit = "bootseed-lab-report.service"
    shutil.copy2(GUEST_FILES / unit, tree / "etc/systemd/system" / unit)
    run(["systemctl", f"--root={tree}", "enable", unit], log=log)


def install_report_script(lab: Path) -> None:
    """report.py and its own copy of ``bootseed.contract`` (standard library only), which it
    imports for the kernel command line: the cloud-init image has no bootseed, and the report
    must not depend on the state of bootseed's install in the bootseed image either."""
    lab.mkdir(parents=True, exist_ok=True)
    shutil.copy2(GUEST_FILES / "report.py", lab / "report.py")
    contract_dir = lab / "bootseed" / "contract"
    contract_dir.mkdir(parents=True, exist_ok=True)
    for source in CONTRACT_FILES.glob("*.py"):
        shutil.copy2(source, contract_dir / source.name)


def install_grub_files(tree: Path, root_label: str, kernel_args: str,
                       grub_dir: Path = grub.GRUB_PC_DIR, firmware: str = "bios",
                       efi_dir: Path = grub.GRUB_EFI_DIR) -> None:
    """grub.cfg, grubenv and the modules of each firmware the image boots on."""
    boot_grub = tree / "boot/grub"
    platforms = []
    if firmware in ("bios", "both"):
        platforms.append((grub_dir, "i386-pc"))
    if firmware in ("uefi", "both"):
        platforms.append((efi_dir, "x86_64-efi"))
    for source, platform in platforms:
        modules = boot_grub / platform
        if modules.exists():
            shutil.rmtree(modules)
        modules.mkdir(parents=True)
        for item in source.iterdir():
            if item.suffix in (".mod", ".lst"):
                shutil.copy2(item, modules / item.name)
    (boot_grub / "grub.cfg").write_text(grub.grub_cfg(root_label, kernel_args,
                                                      firmware=firmware))
    (boot_grub / "grubenv").write_bytes(grub.grubenv_block({grub.LAB_ARGS_VAR: ""}))


def tree_size(tree: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
