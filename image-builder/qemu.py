"""QEMU command lines for the lab, and running one VM with a hard timeout.

Always ``-accel tcg -cpu max``: ``/dev/kvm`` exists on the lab machines but
hangs, and ``-cpu max`` gives the guest RDRAND so early Python does not wait
for entropy. ``-nodefaults`` so the guest has exactly the devices listed.
The serial console (ttyS0) is written to a log file.

UEFI boots use Debian's OVMF: the firmware code read-only and a copy of the
variable store per boot (the firmware writes its boot entries there), both
as pflash. The image disk gets ``bootindex=0`` so OVMF boots it first instead
of trying the network card's PXE ROM, which under TCG costs minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")


@dataclass(frozen=True)
class Drive:
    path: Path
    fmt: str = "qcow2"
    interface: str = "virtio"
    media: str = "disk"
    readonly: bool = False
    # Set: the firmware boots this disk first (a virtio disk, as its own device).
    bootindex: int | None = None

    def argument(self, drive_id: str = "") -> str:
        if "," in str(self.path):
            raise ValueError(f"a comma in {self.path} would split QEMU's -drive value")
        interface = f"if=none,id={drive_id}" if drive_id else f"if={self.interface}"
        parts = [f"file={self.path}", f"format={self.fmt}", interface,
                 f"media={self.media}", "cache=unsafe"]
        if self.readonly:
            parts.append("readonly=on")
        return ",".join(parts)

    def arguments(self, number: int) -> list[str]:
        """The QEMU options for this drive (``number`` makes its id unique)."""
        if self.bootindex is None:
            return ["-drive", self.argument()]
        if self.interface != "virtio":
            raise ValueError("a boot index is only set on virtio disks")
        drive_id = f"drive{number}"
        return ["-drive", self.argument(drive_id),
                "-device", f"virtio-blk-pci,drive={drive_id},bootindex={self.bootindex}"]


@dataclass(frozen=True)
class UefiFirmware:
    """OVMF: its code (read-only) and this boot's own copy of the variable store."""

    code: Path
    variables: Path

    def arguments(self) -> list[str]:
        for path in (self.code, self.variables):
            if "," in str(path):
                raise ValueError(f"a comma in {path} would split QEMU's -drive value")
        return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={self.code}",
                "-drive", f"if=pflash,format=raw,unit=1,file={self.variables}"]


@dataclass(frozen=True)
class SmbiosSystem:
    """SMBIOS type 1 (what the guest sees in /sys/class/dmi/id/sys_vendor, ...)."""

    manufacturer: str
    product: str = ""
    version: str = ""
    serial: str = ""
    uuid: str = ""

    def argument(self) -> str:
        parts = ["type=1", f"manufacturer={self.manufacturer}"]
        for name in ("product", "version", "serial", "uuid"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        if any("," in p for p in parts):
            raise ValueError("a comma in an SMBIOS field would split QEMU's -smbios value")
        return ",".join(parts)


# What an EC2 instance's DMI says (vendor, product, and a uuid starting "ec2").
EC2_SMBIOS = SmbiosSystem(
    manufacturer="Amazon EC2",
    product="t3.micro",
    serial="ec2e7b2c-5d1f-4f3e-9a0b-0123456789ab",
    uuid="ec2e7b2c-5d1f-4f3e-9a0b-0123456789ab",
)

# What an OpenStack Nova instance's DMI says (manufacturer and product name).
OPENSTACK_SMBIOS = SmbiosSystem(
    manufacturer="OpenStack Foundation",
    product="OpenStack Nova",
    version="27.1.0",
    uuid="5d7d1a52-3d8e-4c1e-8f7b-8f2c1a9b7e10",
)


@dataclass
class VmSpec:
    drives: list[Drive]
    nic: str | None
    console_log: Path
    memory_mb: int = 1024
    cpus: int = 1
    allow_reboot: bool = False
    smbios: SmbiosSystem | None = None
    extra: list[str] = field(default_factory=list)
    # None: SeaBIOS, QEMU's default BIOS.
    uefi: UefiFirmware | None = None

    def argv(self, qemu: str = QEMU) -> list[str]:
        args = [
            qemu,
            "-accel", "tcg",
            "-cpu", "max",
            "-machine", "pc",
            "-m", str(self.memory_mb),
            "-smp", str(self.cpus),
            "-nodefaults",
            "-no-user-config",
            "-display", "none",
            "-monitor", "none",
            "-chardev", f"file,id=console,path={self.console_log}",
            "-serial", "chardev:console",
        ]
        if not self.allow_reboot:
            args.append("-no-reboot")
        if self.uefi is not None:
            args += self.uefi.arguments()
        if self.smbios is not None:
            args += ["-smbios", self.smbios.argument()]
        for number, drive in enumerate(self.drives):
            args += drive.arguments(number)
        args += ["-nic", self.nic] if self.nic else ["-nic", "none"]
        return args + list(self.extra)


@dataclass
class VmOutcome:
    returncode: int | None
    timed_out: bool
    seconds: float
    stderr: str


def run_vm(argv: Sequence[str], timeout: float, stderr_path: Path) -> VmOutcome:
    """Run QEMU until it exits or ``timeout`` seconds pass; it never outlives this call.

    QEMU runs in its own process group so its relay children (socat) go too.
    """
    started = time.monotonic()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.poll() is None:
                _kill_group(proc)
            _reap_leftovers(proc.pid)
    seconds = time.monotonic() - started
    text = stderr_path.read_text(errors="replace")[-4000:]
    return VmOutcome(returncode=proc.returncode, timed_out=timed_out, seconds=seconds,
                     stderr=text)


def _reap_leftovers(pgid: int) -> None:
    # socat relays of connections still open when QEMU went away.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
