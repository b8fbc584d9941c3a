"""End-to-end: GRUB's boot counting and the fallback entry, booted from the image's own disk.

Each test boots once with reboots allowed. The image build installed
``bootseed fallback``; on the first boot the seed's runcmd may install it
again with other settings (as an operator would), takes
``bootseed.lab.poweroff=0`` out of the lab's per-boot arguments (so the last
boot powers the VM off after its report) and reboots. What happens after that
is GRUB running the block the install wrote, with no input from the test: the
serial console shows every GRUB entry started and every kernel command line,
and the last boot's report carries bootseed's own view (``bootseed fallback
status``, ``/run/bootseed/fallback.json``).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

pytestmark = pytest.mark.boot

DEFAULT_ENTRY = "Booting `Debian GNU/Linux'"
FALLBACK_ENTRY = "Booting `Distribution kernel (bootseed fallback)'"
FALLBACK_CMDLINE = "root=LABEL=bootseed-root ro console=ttyS0,115200 net.ifnames=1"
STATUS_FILE = "/run/fb-status.json"
RECORD_FILE = "/run/bootseed/fallback.json"
HOOK_LOG = "/var/tmp/fb-hook.log"
REPORT_FILES = ["/proc/cmdline", STATUS_FILE, RECORD_FILE, "/run/fb-install.log", HOOK_LOG,
                "/boot/grub/grub.cfg"]
DROP_LAB_POWEROFF = (
    "from pathlib import Path; from bootseed.late.fallback import grubenv; "
    "p = Path('/boot/grub/grubenv'); v = grubenv.read(p); "
    "grubenv.update(p, {'bootseed_lab_args': "
    "v.get('bootseed_lab_args', '').replace('bootseed.lab.poweroff=0', '')})"
)
BREAK_DEFAULT_INITRD = (
    # Replaced as update-initramfs does (a new file renamed over the old name), so
    # the hard link in /boot/dist-kernel keeps the original.
    "echo not-an-initramfs > /boot/initrd.img.broken && "
    "mv /boot/initrd.img.broken $(readlink -f /initrd.img)"
)


UPGRADE_KERNEL = (
    # A kernel upgrade as the packages do it: the new version's files, the /vmlinuz and
    # /initrd.img symlinks moved to them, the old package's files removed, then the
    # postinst.d hooks with (version, image). The "new" kernel is the old one's bytes,
    # so it boots with the modules the image has.
    "V=$(readlink -f /vmlinuz | sed s,.*/vmlinuz-,,); N=6.1.0-99-upgrade; "
    "cp /boot/vmlinuz-$V /boot/vmlinuz-$N && cp /boot/initrd.img-$V /boot/initrd.img-$N && "
    "ln -sfn boot/vmlinuz-$N /vmlinuz && ln -sfn boot/initrd.img-$N /initrd.img && "
    "rm /boot/vmlinuz-$V /boot/initrd.img-$V && "
    f"/etc/kernel/postinst.d/zz-bootseed-fallback $N /boot/vmlinuz-$N > {HOOK_LOG} 2>&1"
)


def _user_data(extra_runcmd: list[str], install: bool) -> str:
    lines = [
        "#cloud-config",
        "bootcmd:",
        f"  - [sh, -c, 'bootseed fallback status --json > {STATUS_FILE} 2>&1 || true']",
        "runcmd:",
    ]
    if install:
        lines.append("  - [sh, -c, \"bootseed fallback install --tries 2 --panic 3 --cmdline "
                     f"'{FALLBACK_CMDLINE}' > /run/fb-install.log 2>&1\"]")
    lines.append(f"  - [/usr/bin/python3, -c, \"{DROP_LAB_POWEROFF}\"]")
    lines += [f"  - [sh, -c, \"{cmd}\"]" for cmd in extra_runcmd]
    # After the lab's report of this boot, so the report is whole on the console.
    lines.append("  - [systemd-run, --no-block, --unit=fallback-test-reboot, "
                 "--property=After=bootseed-lab-report.service, systemctl, reboot]")
    return "\n".join(lines) + "\n"


def _seed(tmp_path: Path, instance: str, extra_runcmd: list[str], install: bool = True) -> Path:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: {instance}\nlocal-hostname: fbtest\n")
    (seed / "user-data").write_text(_user_data(extra_runcmd, install))
    return seed


def _boot(lab: BootLab, seed: Path) -> BootResult:
    return lab.boot(fallback_boot_options(seed))


def fallback_boot_options(seed: Path, firmware: str = "",
                          more_files: tuple[str, ...] = ()) -> BootOptions:
    """One fallback boot (reboots allowed) with this seed; test_uefi boots it under OVMF."""
    return BootOptions(nocloud_dir=seed, allow_reboot=True, timeout=1500,
                       report_files=[*REPORT_FILES, *more_files], firmware=firmware)


def broken_default_seed(tmp_path: Path) -> Path:
    """The seed that breaks the default entry's initramfs after installing the fallback."""
    return _seed(tmp_path, "i-fallback-broken", [BREAK_DEFAULT_INITRD])


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def _file_json(result: BootResult, path: str) -> Any:
    report = result.report
    assert report is not None, _diagnose(result)
    entry = report.file_entry(path)
    assert entry is not None and "b64" in entry, (path, entry, _diagnose(result))
    return json.loads(base64.b64decode(entry["b64"]))


def _cmdline(result: BootResult) -> str:
    assert result.report is not None
    data = result.report.file_bytes("/proc/cmdline")
    assert data is not None
    return data.decode()


def _entries(console: str) -> list[str]:
    """The GRUB entries started, in order."""
    found = []
    for line in console.splitlines():
        at = line.find("Booting `")
        if at >= 0:
            found.append(line[at:].strip())
    return found


def test_broken_default_comes_up_on_the_fallback_by_itself(lab: BootLab,
                                                           tmp_path: Path) -> None:
    assert_fell_back_by_itself(_boot(lab, broken_default_seed(tmp_path)))


def assert_fell_back_by_itself(result: BootResult) -> None:
    """What a boot with :func:`broken_default_seed` must show, on any firmware."""
    console = result.console_text()
    assert not result.timed_out, _diagnose(result)
    # First boot, then the two tries of the broken default (each a kernel panic and
    # a reboot through panic=3), then the fallback entry.
    assert _entries(console) == [DEFAULT_ENTRY] * 3 + [FALLBACK_ENTRY], _diagnose(result)
    assert console.count("Kernel panic - not syncing: VFS: Unable to mount root fs") == 2
    cmdline = _cmdline(result)
    assert "bootseed.fallback=tries-exhausted" in cmdline and "panic=3" in cmdline
    assert FALLBACK_CMDLINE in cmdline
    assert result.ok, _diagnose(result)
    status = _file_json(result, STATUS_FILE)
    assert status["boot"]["from_fallback"] is True
    assert status["boot"]["reason"] == "tries-exhausted"
    assert status["counter"] == "0" and status["installed"] is True
    assert all(check["ok"] for check in status["dist_kernel"]), status
    record = _file_json(result, RECORD_FILE)
    assert record["origin"]["from_fallback"] is True and record["marked_good"] is False
    assert record["counter"] == "0"


def test_upgraded_kernel_boot_is_counted_and_marked_good(lab: BootLab,
                                                         tmp_path: Path) -> None:
    # No install here: the image build installed the fallback (tries 2, panic=10).
    result = _boot(lab, _seed(tmp_path, "i-fallback-upgrade", [UPGRADE_KERNEL], install=False))
    assert not result.timed_out, _diagnose(result)
    assert _entries(result.console_text()) == [DEFAULT_ENTRY] * 2, _diagnose(result)
    assert result.ok, _diagnose(result)
    assert "bootseed.fallback=" not in _cmdline(result)
    assert result.report is not None
    assert result.report.file_bytes(HOOK_LOG) == b""  # the hook ran and had nothing to say
    # The fallback entry still boots the original kernel, whose package names are gone.
    cfg = (result.report.file_bytes("/boot/grub/grub.cfg") or b"").decode()
    assert ("linux /boot/dist-kernel/vmlinuz root=LABEL=bootseed-root ro console=tty0 "
            "console=ttyS0,115200 net.ifnames=1 panic=10 ") in cfg
    assert cfg.count("### BEGIN bootseed fallback ###") == 1
    # bootcmd ran before boot_health: GRUB had counted this boot (2 -> 1) ...
    status = _file_json(result, STATUS_FILE)
    assert status["boot"]["from_fallback"] is False
    assert status["counter"] == "1" and status["healthy"] is True, status
    details = [check["detail"] for check in status["dist_kernel"]]
    assert all("6.1.0-" in d and "is gone, this keeps the original" in d for d in details), \
        details
    # ... and the final stage reset the count.
    record = _file_json(result, RECORD_FILE)
    assert record["marked_good"] is True and record["counter"] == "2", record


REMOVE_DEFAULT_KERNEL = (
    # The file /vmlinuz points at is gone (the link in /boot/dist-kernel keeps it).
    # A kernel cut short is no test of GRUB: GRUB loads whatever is there, and under
    # QEMU a warm reboot leaves the previous boot's kernel in RAM for the rest.
    "rm $(readlink -f /vmlinuz)"
)


def test_missing_default_kernel_falls_back_in_grub_at_once(lab: BootLab,
                                                           tmp_path: Path) -> None:
    result = _boot(lab, _seed(tmp_path, "i-fallback-gone", [REMOVE_DEFAULT_KERNEL],
                              install=False))
    console = result.console_text()
    assert not result.timed_out, _diagnose(result)
    # GRUB cannot load the default entry; its fallback variable takes over without a
    # kernel ever starting, and without using up the counter.
    assert _entries(console) == [DEFAULT_ENTRY] * 2, _diagnose(result)
    assert "Falling back to `Distribution kernel (bootseed fallback)'" in console
    assert console.count("] Linux version ") == 2, _diagnose(result)
    assert "bootseed.fallback=default-not-loaded" in _cmdline(result)
    assert result.ok, _diagnose(result)
    status = _file_json(result, STATUS_FILE)
    assert status["boot"]["reason"] == "default-not-loaded" and status["counter"] == "1"
    assert "is gone, this keeps the original" in status["dist_kernel"][0]["detail"]
