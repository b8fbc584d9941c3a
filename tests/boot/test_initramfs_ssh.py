"""End-to-end: SSH into the initramfs when the root will not mount (issue 23).

``bootseed.sshd=always`` on both: the lab's entries carry ``panic=10``, under which the
default ``auto`` lets the initramfs reboot into GRUB's fallback counting on the default
entry (see docs/root-will-not-mount.md#switches); ``always`` waits there as well.

Two guests, booted at the same time (each with its own host-forwarded SSH port):

1. the root label on the kernel command line is wrong: the host connects with the seed's
   key (meta-data ``public-keys`` and user-data ``ssh_authorized_keys`` of a cidata
   disc), checks the host key against the fingerprint the console printed, reads the
   cached seed, sees a wrong key refused, mounts the real root by hand and runs
   ``bootseed-continue``: the boot reaches multi-user and the server is gone;
2. the root filesystem's group descriptors are damaged (the kernel refuses to mount it,
   ``e2fsck -p`` gives up): the session repairs it with ``e2fsck -y``, mounts it and
   continues; the boot reaches multi-user.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult
from bootseed.image_builder.manifest import read_manifest, write_manifest
from bootseed.image_builder.pipeline import ROOT_LABEL

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
SSH_WAIT_S = 600.0
SESSION = "/run/bootseed-sshd/session.json"
REPORT_FILES = [SESSION, "/run/bootseed/seed.json", "/proc/cmdline"]
INSTANCE_ID = "iid-initramfs-ssh"
# The lab's GRUB entries carry panic=10 (the fallback kernel's boot counting): with the
# default auto the initramfs would reboot on the default entry; always waits there too.
SSHD_ALWAYS = "bootseed.sshd=always"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keypair(directory: Path, name: str) -> tuple[Path, str]:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def _seed(directory: Path, public_key: str) -> Path:
    seed = directory / "cidata"
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: {INSTANCE_ID}\nlocal-hostname: rescued\n"
                                    f"public-keys:\n  - {public_key}\n")
    (seed / "user-data").write_text(f"#cloud-config\nssh_authorized_keys:\n  - {public_key}\n")
    return seed


def _ssh(port: int, key: Path, command: str, timeout: float = 120.0, verbose: bool = False
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", *(["-v"] if verbose else []), "-i", str(key), "-p", str(port),
         "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20",
         "root@127.0.0.1", command],
        capture_output=True, text=True, timeout=timeout, check=False)


def _wait_for_server(port: int, key: Path) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + SSH_WAIT_S
    while True:
        # The server runs from init-premount (always); the rescue waits once the root
        # has failed, which its reason file says.
        proc = _ssh(port, key, f"cat /run/bootseed-sshd/reason >/dev/null && cat {SESSION}",
                    verbose=True)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc
        time.sleep(5)


class Guest:
    """One boot in a thread; its result when it ends."""

    def __init__(self, lab: BootLab, opts: BootOptions) -> None:
        self.result: BootResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(lab, opts), daemon=True)
        self._thread.start()

    def _run(self, lab: BootLab, opts: BootOptions) -> None:
        try:
            self.result = lab.boot(opts)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def join(self) -> BootResult:
        self._thread.join(TIMEOUT + 120)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the boot did not end"
        return self.result


def _damaged_copy(image: Path, directory: Path) -> Path:
    """The image with group 0's block bitmap pointing far outside the filesystem: the
    kernel refuses to mount it (even read-only), e2fsck -p gives up, e2fsck -y repairs it
    from the backup descriptors."""
    copy = directory / image.name
    subprocess.run(["cp", "--sparse=always", str(image), str(copy)], check=True)
    manifest = read_manifest(image)
    write_manifest(manifest, copy)
    with open(copy, "r+b") as disk:
        disk.seek(manifest.root_offset + 1024 + 24)
        block_size = 1024 << struct.unpack("<I", disk.read(4))[0]
        disk.seek(manifest.root_offset + block_size * (1 if block_size > 1024 else 2))
        disk.write(struct.pack("<I", 4_000_000_000))
    return copy


def _console_fingerprint(result_console: str) -> str:
    match = re.search(r"bootseed-sshd: host key ED25519 (\S+)", result_console)
    assert match, "no host key fingerprint on the console"
    return match.group(1)


def _seen_fingerprint(ssh_stderr: str) -> str:
    match = re.search(r"Server host key: ssh-ed25519 (\S+)", ssh_stderr)
    assert match, ssh_stderr[-2000:]
    return match.group(1)


def test_ssh_rescue_wrong_root_and_damaged_root(lab: BootLab, lab_image: Path,
                                                tmp_path: Path) -> None:
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("needs the OpenSSH client")
    key, public = _keypair(tmp_path, "seed-key")
    wrong, _ = _keypair(tmp_path, "wrong-key")
    seed = _seed(tmp_path, public)
    started = time.monotonic()

    port_label, port_damaged = _free_port(), _free_port()
    label_guest = Guest(lab, BootOptions(
        cidata_dir=seed, kernel_args=["root=LABEL=bootseed-nosuchroot", SSHD_ALWAYS],
        ssh_forward_port=port_label, report_files=REPORT_FILES, timeout=TIMEOUT))
    damaged_dir = tmp_path / "damaged"
    damaged_dir.mkdir()
    damaged_lab = BootLab(_damaged_copy(lab_image, damaged_dir), damaged_dir / "boots")
    damaged_guest = Guest(damaged_lab, BootOptions(
        cidata_dir=seed, kernel_args=[SSHD_ALWAYS], ssh_forward_port=port_damaged,
        report_files=REPORT_FILES,
        timeout=TIMEOUT))

    # Guest 1: wrong root= label.
    first = _wait_for_server(port_label, key)
    assert first.returncode == 0, first.stderr[-3000:]
    session = json.loads(first.stdout)
    assert session["keys"]["meta-data public-keys"] == 1
    assert session["address"]
    seen = _seen_fingerprint(first.stderr)
    refused = _ssh(port_label, wrong, "echo should-not-run")
    assert refused.returncode == 255 and "should-not-run" not in refused.stdout
    assert "Permission denied" in refused.stderr
    shown = _ssh(port_label, key, "cat /run/bootseed/seed.json; cat /run/bootseed-sshd/reason")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert INSTANCE_ID in shown.stdout
    assert "missing-device\nthe root device LABEL=bootseed-nosuchroot does not exist" \
        in shown.stdout
    # /root/sbin/init is an absolute symlink (into the real root): look at its target.
    cont = _ssh(port_label, key,
                f"modprobe ext4; dev=$(blkid -l -t LABEL={ROOT_LABEL} -o device); "
                "echo \"root-device=$dev\"; mount -t ext4 -r \"$dev\" /root && echo mounted && "
                "test -x /root/lib/systemd/systemd && echo has-init && bootseed-continue")
    assert cont.returncode == 0, cont.stdout + cont.stderr
    assert "checks and mounts /dev/" in cont.stdout

    # Guest 2: damaged root filesystem.
    second = _wait_for_server(port_damaged, key)
    assert second.returncode == 0, second.stderr[-3000:]
    repair = _ssh(port_damaged, key,
                  "read -r kind </run/bootseed-sshd/reason; echo \"$kind\"; "
                  f"dev=$(blkid -l -t LABEL={ROOT_LABEL} "
                  "-o device); echo \"root-device=$dev\"; e2fsck -y \"$dev\"; "
                  "echo e2fsck-exit=$?; modprobe ext4; "
                  "mount -t ext4 -r \"$dev\" /root && echo mounted && bootseed-continue",
                  timeout=600)
    assert repair.returncode == 0, repair.stdout[-3000:] + repair.stderr
    assert re.search(r"e2fsck-exit=[01]\b", repair.stdout), repair.stdout[-3000:]
    assert repair.stdout.startswith(("mount\n", "fsck\n")), repair.stdout[:200]

    for guest in (label_guest, damaged_guest):
        result = guest.join()
        console = result.console_text()
        assert not result.timed_out, console[-4000:]
        report = result.report
        assert report is not None and report.raw.get("multi_user_reached"), console[-4000:]
        assert result.ok, result.problems()
        assert _console_fingerprint(console)
        record = json.loads(report.file_bytes(SESSION) or b"{}")
        assert record.get("handed_over"), record
        # The server, its keys and its network are gone before the real root's init.
        assert re.search(r"bootseed-sshd: dropbear \d+ stopped", console), console[-4000:]
    assert _console_fingerprint(label_guest.join().console_text()) == seen
    print(f"initramfs ssh boots: {time.monotonic() - started:.0f} s for both guests")
