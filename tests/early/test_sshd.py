"""The initramfs SSH server's hand-over (bootseed.early.sshd): what it tells initramfs-tools'
shell, bootseed-continue's rules, and a whole rescue with a real dropbear on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from bootseed.contract.cli import CliError
from bootseed.contract.seedcache import Seed, write_seed_cache
from bootseed.early import sshd
from bootseed.early.sshd import Layout, ServerOptions

MISSING = "ALERT!  LABEL=nosuch does not exist.  Dropping to a shell!"
FAILED_MOUNT = "Failed to mount /dev/vda1 as root file system."


def _sh(script: str, cwd: Path, stdin: str = "") -> str:
    proc = subprocess.run(["sh", "-c", script], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_param_conf_reaches_the_wait_loop_and_ends_the_console_shell(tmp_path: Path):
    layout = Layout(tmp_path / "state")
    layout.state_dir.mkdir()
    conf = tmp_path / "param.conf"
    conf.write_text(sshd.param_conf_text(layout, "missing-device", "/dev/vda1"))
    layout.leave_script.write_text(sshd.leave_script_text(layout))
    layout.leave_marker.write_text("leave\n")
    # As in initramfs-tools: panic (run_scripts) sources param.conf inside the dynamic
    # scope of local_device_setup, then starts an interactive shell.
    out = _sh(f"""
        panic() {{ . {conf}; sh -i </dev/null >/dev/null 2>&1; echo "shell-exit=$?"; }}
        local_device_setup() {{ local dev_id=LABEL=nosuch; panic; echo "dev_id=$dev_id"; }}
        local_device_setup
        echo "ENV=$ENV"
        . {conf}
        echo "ENV-after=$ENV"
    """, tmp_path)
    assert "shell-exit=0" in out
    assert "dev_id=/dev/vda1" in out
    assert f"ENV={layout.leave_script}" in out
    assert out.rstrip().endswith("ENV-after=")
    assert layout.leave_marker.read_text() == "spent\n"


def test_console_shell_stays_without_a_hand_over(tmp_path: Path):
    layout = Layout(tmp_path / "state")
    layout.state_dir.mkdir()
    layout.leave_script.write_text(sshd.leave_script_text(layout))
    out = _sh(f"ENV={layout.leave_script} sh -i 2>/dev/null; echo end", tmp_path,
              stdin="echo still-here\nexit 7\n")
    assert "still-here" in out


def test_param_conf_refuses_a_device_that_is_not_one(tmp_path: Path):
    with pytest.raises(ValueError):
        sshd.param_conf_text(Layout(tmp_path), "missing-device", "/dev/vda1; reboot")
    text = sshd.param_conf_text(Layout(tmp_path), "fsck", "/dev/vda1")
    assert "dev_id" not in text


def _waiting(tmp_path: Path, reason: str) -> Layout:
    layout = Layout(tmp_path / "state")
    layout.state_dir.mkdir(parents=True)
    layout.reason.write_text(f"{sshd.classify(reason)}\n{reason}\n")
    return layout


def test_continue_rules(tmp_path: Path):
    mounts = tmp_path / "mounts"
    mounts.write_text("rootfs / rootfs rw 0 0\n")
    with pytest.raises(CliError, match="nothing is waiting"):
        sshd.request_continue(Layout(tmp_path / "none"), None, "/root", str(mounts))
    layout = _waiting(tmp_path, MISSING)
    with pytest.raises(CliError, match="name it"):
        sshd.request_continue(layout, None, "/root", str(mounts))
    with pytest.raises(CliError, match="expected /dev/NAME"):
        sshd.request_continue(layout, "vda1", "/root", str(mounts))
    said = sshd.request_continue(layout, "LABEL=bootseed-root", "/root", str(mounts))
    assert said == "the initramfs checks and mounts LABEL=bootseed-root as the root"
    assert json.loads(layout.continue_request.read_text()) == {"device": "LABEL=bootseed-root"}

    layout = _waiting(tmp_path / "m", FAILED_MOUNT)
    with pytest.raises(CliError, match="nothing is mounted on /root"):
        sshd.request_continue(layout, None, "/root", str(mounts))
    mounts.write_text("rootfs / rootfs rw 0 0\n/dev/vda1 /root ext4 ro 0 0\n")
    assert sshd.request_continue(layout, None, "/root", str(mounts)) == \
        "the boot goes on with /dev/vda1 on /root"


@pytest.mark.parametrize(("reason", "kind"), [
    (MISSING, "missing-device"), (FAILED_MOUNT, "mount"),
    ("The root filesystem on /dev/vda1 requires a manual fsck", "fsck"),
    ("No init found. Try passing init= bootarg.", "no-init"), ("something else", "other")])
def test_classify(reason: str, kind: str):
    assert sshd.classify(reason) == kind


def test_diagnose_without_panics_message(tmp_path: Path):
    mounts = tmp_path / "mounts"
    mounts.write_text("rootfs / rootfs rw 0 0\n")
    fsck_dir = tmp_path / "initramfs"
    fsck_dir.mkdir()

    def kind(root: str | None) -> str:
        return sshd.diagnose(root, "/root", str(mounts), str(fsck_dir))[0]

    assert sshd.diagnose("LABEL=bootseed-no-such-label-here", "/root", str(mounts),
                         str(fsck_dir)) == (
        "missing-device", "the root device LABEL=bootseed-no-such-label-here does not exist")
    assert kind(str(tmp_path / "no-such-device")) == "missing-device"
    assert kind(None) == "other"
    device = tmp_path / "vda1"
    device.write_text("")
    assert kind(str(device)) == "mount"
    (fsck_dir / "fsck.log").write_text("fsck failed\n")
    assert kind(str(device)) == "fsck"
    (fsck_dir / "fsck-root").write_text("")
    assert kind(str(device)) == "mount"
    mounts.write_text(f"{device} /root ext4 ro 0 0\n")
    assert kind(str(device)) == "no-init"


def test_rescue_writes_the_diagnosis_when_panic_gives_no_message(tmp_path: Path):
    layout = Layout(tmp_path / "state")
    options = ServerOptions(layout=layout, seed_dir=str(tmp_path / "none"),
                            fallback_keys=str(tmp_path / "none"), cmdline="ro",
                            bring_up_network=False)
    # No key anywhere: not started, the console shell follows.
    assert sshd.rescue(options, "", "/root", tmp_path / "param.conf",
                       root="LABEL=bootseed-no-such-label-here") == 1
    assert layout.reason.read_text() == ("missing-device\nthe root device "
                                         "LABEL=bootseed-no-such-label-here does not exist\n")
    assert not (tmp_path / "param.conf").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(not Path(sshd.DROPBEAR).exists(), reason="needs dropbear-bin")
def test_rescue_serves_waits_and_hands_over(tmp_path: Path):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text().strip()
    write_seed_cache(Seed(source="nocloud", metadata={"public-keys": [public]}),
                     tmp_path / "seed")
    layout = Layout(tmp_path / "state")
    port = _free_port()
    options = ServerOptions(layout=layout, seed_dir=str(tmp_path / "seed"),
                            fallback_keys=str(tmp_path / "none"), port=port,
                            listen_address="127.0.0.1", etc=str(tmp_path / "etc"),
                            cmdline="ro", bring_up_network=False)
    conf = tmp_path / "param.conf"
    outcome: list[int] = []
    rescue = threading.Thread(target=lambda: outcome.append(
        sshd.rescue(options, MISSING, str(tmp_path / "root"), conf)))
    rescue.start()
    try:
        deadline = time.monotonic() + 30
        while sshd.read_session(layout) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        session = sshd.read_session(layout)
        assert session is not None and session.keys == {"meta-data public-keys": 1}
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            assert conn.recv(64).startswith(b"SSH-2.0-dropbear")
        assert layout.authorized_keys.read_text() == public + "\n"
        assert oct(layout.authorized_keys.stat().st_mode & 0o777) == "0o600"
        assert (tmp_path / "etc/passwd").read_text().startswith(f"root:x:0:0:root:{layout.home}:")
        listed = subprocess.run(["dropbearkey", "-y", "-f", str(layout.host_key)],
                                capture_output=True, text=True, check=True).stdout
        assert session.fingerprint in listed
        assert rescue.is_alive()  # waiting for bootseed-continue
        sshd.request_continue(layout, "/dev/vda1", str(tmp_path / "root"), "/dev/null")
        rescue.join(10)
        assert outcome == [0]
        assert "dev_id='/dev/vda1'" in conf.read_text()
        assert layout.leave_marker.read_text() == "leave\n"
        assert sshd.read_session(layout).handed_over == "/dev/vda1"  # type: ignore[union-attr]
    finally:
        said = sshd.stop(layout)
    assert said.startswith(f"dropbear {session.pid} stopped")
    time.sleep(0.5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert not layout.host_key.exists() and not layout.authorized_keys.exists()
    # Ended by the signal (the test process is its parent, so it reaps it).
    assert os.waitpid(session.pid, 0)[0] == session.pid


@pytest.mark.skipif(not Path(sshd.DROPBEAR).exists(), reason="needs dropbear-bin")
def test_no_init_hand_over_stops_the_server_itself(tmp_path: Path):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    fallback = tmp_path / "fallback"
    fallback.write_text(key.with_suffix(".pub").read_text())
    layout = Layout(tmp_path / "state")
    options = ServerOptions(layout=layout, seed_dir=str(tmp_path / "no-seed"),
                            fallback_keys=str(fallback), port=_free_port(),
                            listen_address="127.0.0.1", etc=str(tmp_path / "etc"),
                            cmdline="ro", bring_up_network=False)
    rootmnt = tmp_path / "root"
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda1 {rootmnt} ext4 ro 0 0\n")
    outcome: list[int] = []
    rescue = threading.Thread(target=lambda: outcome.append(sshd.rescue(
        options, "No init found. Try passing init= bootarg.", str(rootmnt),
        tmp_path / "param.conf")))
    rescue.start()
    deadline = time.monotonic() + 30
    while sshd.read_session(layout) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    session = sshd.read_session(layout)
    assert session is not None and session.keys == {"image fallback key": 1}
    try:
        assert sshd.request_continue(layout, None, str(rootmnt), str(mounts)) == \
            f"the boot goes on with /dev/vda1 on {rootmnt}"
        rescue.join(10)
        assert outcome == [0]
        assert not layout.pidfile.exists() and not layout.host_key.exists()
        assert os.waitpid(session.pid, 0)[0] == session.pid
    finally:
        sshd.stop(layout)


PREMOUNT = (Path(__file__).resolve().parents[2] / "initramfs-hooks" / "initramfs-tools"
            / "scripts" / "init-premount" / "bootseed")


@pytest.mark.parametrize(("cmdline", "cleared"), [
    ("root=LABEL=r ro", False),                                   # no panic=: panic hooks run
    ("root=LABEL=r ro panic=10", False),                          # auto, default entry: reboot
    ("root=LABEL=r ro panic=10 bootseed.fallback=tries", True),   # auto, fallback entry: wait
    ("root=LABEL=r ro panic=10 bootseed.sshd=always", True),
    ("root=LABEL=r ro panic=10 bootseed.fallback=tries bootseed.sshd=off", False),
    ("root=LABEL=r ro panic=10 bootseed.sshd=always bootseed.early=off", False),
])
def test_init_premount_clears_initramfs_panic_only_when_the_server_should_wait(
        tmp_path: Path, cmdline: str, cleared: bool):
    """The real script, with its absolute paths pointed at the test's files."""
    conf = tmp_path / "early.conf"
    conf.write_text("BOOTSEED_PYTHON=/bin/true\nBOOTSEED_PREMOUNT_ARGS=\"\"\nBOOTSEED_SSHD=yes\n")
    proc_cmdline = tmp_path / "cmdline"
    proc_cmdline.write_text(cmdline + "\n")
    param_conf = tmp_path / "param.conf"
    script = tmp_path / "init-premount"
    script.write_text(PREMOUNT.read_text().replace("/etc/bootseed-early.conf", str(conf))
                      .replace("/proc/cmdline", str(proc_cmdline))
                      .replace("/conf/param.conf", str(param_conf)))
    subprocess.run(["sh", str(script)], check=True, timeout=30)
    out = subprocess.run(["sh", "-c", f"panic=10; [ -e {param_conf} ] && . {param_conf}; "
                          'echo "panic=$panic"'], capture_output=True, text=True,
                         check=True).stdout
    assert out == ("panic=\n" if cleared else "panic=10\n")
