"""Turn a copy of the cached base tree into the image's root filesystem tree.

Each step is a function of (tree, inputs) so the build can time and report
them one by one:

* :func:`copy_base` - a fresh copy of the base tree (``cp -a``, ~2 s)
* :func:`configure_system` - hostname, fstab, DHCP for ``en*``/``eth*``,
  machine-id reset, per-instance SSH host keys removed (regenerated on first
  boot), resolv.conf emptied
* :func:`install_bootseed` - a venv at ``/usr/lib/bootseed/venv`` filled from
  the wheels, ``/usr/bin/bootseed``, the systemd units enabled
* :func:`install_lab_files` - the lab report script and its (inert unless
  ``bootseed.lab=1``) unit
* :func:`install_initramfs_hook` - the initramfs-tools hook from
  ``initramfs-hooks/initramfs-tools/`` if the tree has one, then
  ``update-initramfs`` in a chroot
* :func:`install_grub_files` - grub.cfg, grubenv, GRUB modules

Contract for the initramfs hook (``initramfs-hooks/initramfs-tools/``): its
content is copied as-is over ``/etc/initramfs-tools/`` (so ``hooks/bootseed``
lands in ``/etc/initramfs-tools/hooks/``, ``scripts/local-top/...`` in
``/etc/initramfs-tools/scripts/local-top/``), executables kept executable.
bootseed itself is importable in the image from
:data:`VENV_SITE` (``/usr/lib/bootseed/venv/lib/python3.11/site-packages``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from bootseed.image_builder import grub
from bootseed.image_builder.procrun import run
from bootseed.image_builder.wheels import WheelSet

VENV = "/usr/lib/bootseed/venv"
VENV_PY = "python3.11"
VENV_SITE = f"{VENV}/lib/{VENV_PY}/site-packages"
LAB_DIR = "/usr/lib/bootseed-lab"
DEFAULT_HOSTNAME = "debian"
GUEST_FILES = Path(__file__).resolve().parent / "guest"

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

BOOTSEED_WRAPPER = f"""\
#!{VENV}/bin/python3
import sys

from bootseed.late.cli import main

sys.exit(main())
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


def _guest_python(tree: Path) -> str:
    candidates = sorted(p.name for p in (tree / "usr/bin").glob("python3.*")
                        if p.name[len("python3."):].isdigit())
    if not candidates:
        raise RootfsError("the base tree has no /usr/bin/python3.N")
    return candidates[-1]


def install_bootseed(tree: Path, wheels: WheelSet, units_dir: Path, python: str,
                     log: IO[str] | None = None) -> str:
    """Install bootseed into the tree; return the installed wheel's file name."""
    guest_py = _guest_python(tree)
    if guest_py != VENV_PY:
        raise RootfsError(f"the guest has {guest_py}, the builder expects {VENV_PY}")
    venv = tree / VENV.lstrip("/")
    if venv.exists():
        shutil.rmtree(venv)
    run(["chroot", str(tree), f"/usr/bin/{guest_py}", "-m", "venv", "--without-pip", VENV],
        log=log)
    site = tree / VENV_SITE.lstrip("/")
    # pip runs on the host (same Python version) and installs into the guest's
    # venv; the chroot has no pip and no network.
    links: list[str] = []
    for directory in wheels.find_links:
        links += ["--find-links", str(directory)]
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", *links, "--no-compile", "--target", str(site),
         str(wheels.bootseed_wheel)], log=log, timeout=900)
    # Console scripts pip wrote point at the host's interpreter: replace.
    stray_bin = site / "bin"
    if stray_bin.is_dir():
        shutil.rmtree(stray_bin)
    _write(tree, f"{VENV}/bin/bootseed", BOOTSEED_WRAPPER, 0o755)
    link = tree / "usr/bin/bootseed"
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(f"{VENV}/bin/bootseed")
    run(["chroot", str(tree), f"{VENV}/bin/python3", "-m", "compileall", "-q",
         VENV_SITE], log=log, timeout=900)
    install_units(tree, units_dir, log=log)
    return wheels.bootseed_wheel.name


UNIT_SUFFIXES = (".service", ".timer", ".socket", ".path", ".target")


def install_units(tree: Path, units_dir: Path, log: IO[str] | None = None) -> list[str]:
    """Install systemd units and generators from ``units_dir`` as the package would.

    Units go to /usr/lib/systemd/system (where the generator's links point),
    ``*-generator`` files to /usr/lib/systemd/system-generators; only units
    with an ``[Install]`` section are enabled (bootseed's own are added per
    boot by bootseed-generator when there is a seed). Returns what was
    installed.
    """
    unit_dest = tree / "usr/lib/systemd/system"
    gen_dest = tree / "usr/lib/systemd/system-generators"
    installed: list[str] = []
    enable: list[str] = []
    for item in sorted(units_dir.iterdir()):
        if item.suffix in UNIT_SUFFIXES:
            shutil.copy2(item, unit_dest / item.name)
            unit_dest.joinpath(item.name).chmod(0o644)
            if "[Install]" in item.read_text():
                enable.append(item.name)
        elif item.name.endswith("-generator") and item.is_file():
            gen_dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, gen_dest / item.name)
            gen_dest.joinpath(item.name).chmod(0o755)
        else:
            continue
        installed.append(item.name)
    if not installed:
        raise RootfsError(f"no systemd units in {units_dir}")
    if enable:
        run(["systemctl", f"--root={tree}", "enable", *enable], log=log)
    return installed


def install_lab_files(tree: Path, log: IO[str] | None = None) -> None:
    lab = tree / LAB_DIR.lstrip("/")
    lab.mkdir(parents=True, exist_ok=True)
    shutil.copy2(GUEST_FILES / "report.py", lab / "report.py")
    _write(tree, "/etc/systemd/network/80-bootseed-lab.network", LAB_NETWORK_FILE)
    unit = "bootseed-lab-report.service"
    shutil.copy2(GUEST_FILES / unit, tree / "etc/systemd/system" / unit)
    run(["systemctl", f"--root={tree}", "enable", unit], log=log)


@contextlib.contextmanager
def _chroot_mounts(tree: Path) -> Iterator[None]:
    mounted: list[Path] = []
    try:
        for fstype, target in (("proc", "proc"), ("sysfs", "sys")):
            path = tree / target
            path.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", fstype, fstype, str(path)], check=True)
            mounted.append(path)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(path)], check=False)


def install_initramfs_hook(tree: Path, hook_source: Path, kernel_version: str,
                           log: IO[str] | None = None) -> bool:
    """Install the initramfs-tools hook and rebuild the initramfs; False if there is none."""
    if not hook_source.is_dir() or not any(hook_source.iterdir()):
        return False
    dest = tree / "etc/initramfs-tools"
    for src in sorted(hook_source.rglob("*")):
        rel = src.relative_to(hook_source)
        target = dest / rel
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        if src.stat().st_mode & stat.S_IXUSR:
            target.chmod(0o755)
    with _chroot_mounts(tree):
        run(["chroot", str(tree), "update-initramfs", "-u", "-k", kernel_version], log=log,
            timeout=1800, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    return True


def install_grub_files(tree: Path, root_label: str, kernel_args: str,
                       grub_dir: Path = grub.GRUB_PC_DIR) -> None:
    boot_grub = tree / "boot/grub"
    modules = boot_grub / "i386-pc"
    if modules.exists():
        shutil.rmtree(modules)
    modules.mkdir(parents=True)
    for item in grub_dir.iterdir():
        if item.suffix in (".mod", ".lst"):
            shutil.copy2(item, modules / item.name)
    (boot_grub / "grub.cfg").write_text(grub.grub_cfg(root_label, kernel_args))
    (boot_grub / "grubenv").write_bytes(grub.grubenv_block({grub.LAB_ARGS_VAR: ""}))


def tree_size(tree: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
