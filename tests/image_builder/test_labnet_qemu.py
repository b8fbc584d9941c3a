import time
from pathlib import Path

import pytest
from bootseed.image_builder import labnet, qemu


def test_nic_is_restricted_and_forwards_per_connection():
    forwards = [labnet.GuestForward(labnet.IMDS_ADDR, 80, 40001),
                labnet.GuestForward(labnet.SEED_ADDR, 80, 40002)]
    nic = labnet.nic_argument(forwards, relay="/usr/bin/socat")
    parts = nic.split(",")
    assert parts[0] == "user"
    assert "restrict=on" in parts
    assert "net=169.252.0.0/14" in parts
    assert ("guestfwd=tcp:169.254.169.254:80-cmd:/usr/bin/socat STDIO "
            "TCP4:127.0.0.1:40001") in parts
    assert "guestfwd=tcp:169.254.100.1:80-cmd:/usr/bin/socat STDIO TCP4:127.0.0.1:40002" in parts
    # Every forward goes to loopback and nowhere else.
    for part in parts:
        if part.startswith("guestfwd="):
            assert part.split("cmd:", 1)[1].split()[-1].startswith("TCP4:127.0.0.1:")


def test_forward_rejects_bad_port():
    with pytest.raises(ValueError):
        labnet.GuestForward(labnet.SINK_ADDR, 80, 0).option()


def test_seed_url_has_trailing_slash():
    assert labnet.seed_url() == "http://169.254.100.1/"


def test_vm_argv_uses_tcg_and_no_reboot(tmp_path: Path):
    spec = qemu.VmSpec(drives=[qemu.Drive(tmp_path / "d.qcow2")], nic="user,restrict=on",
                       console_log=tmp_path / "console.log", smbios=qemu.EC2_SMBIOS)
    argv = spec.argv()
    joined = " ".join(argv)
    assert "-accel tcg" in joined and "-cpu max" in joined
    assert "-no-reboot" in argv
    assert "-nodefaults" in argv
    assert f"file,id=console,path={tmp_path / 'console.log'}" in argv
    assert "type=1,manufacturer=Amazon EC2," in joined
    assert "-enable-kvm" not in argv
    spec.allow_reboot = True
    assert "-no-reboot" not in spec.argv()


def test_drive_refuses_commas(tmp_path: Path):
    with pytest.raises(ValueError):
        qemu.Drive(tmp_path / "a,b.qcow2").argument()
    cd = qemu.Drive(tmp_path / "seed.iso", fmt="raw", interface="ide", media="cdrom",
                    readonly=True).argument()
    assert "media=cdrom" in cd and "readonly=on" in cd


def test_run_vm_kills_on_timeout(tmp_path: Path):
    marker = tmp_path / "child.pid"
    # A stand-in "VM" that starts a child (as QEMU starts socat relays) and hangs.
    script = f"sleep 60 & echo $! > {marker}; wait"
    started = time.monotonic()
    outcome = qemu.run_vm(["sh", "-c", script], timeout=1.0, stderr_path=tmp_path / "err")
    assert outcome.timed_out
    assert time.monotonic() - started < 15
    child = int(marker.read_text())
    time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    # Killed but not yet reaped by init counts as dead (state Z).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_run_vm_reports_exit_code(tmp_path: Path):
    outcome = qemu.run_vm(["sh", "-c", "echo broken >&2; exit 3"], timeout=10,
                          stderr_path=tmp_path / "err")
    assert not outcome.timed_out
    assert outcome.returncode == 3
    assert "broken" in outcome.stderr


def test_ssh_forward_reaches_the_guest_sshd_from_host_loopback_only():
    assert not any(p.startswith("hostfwd=") for p in labnet.nic_argument([]).split(","))
    parts = labnet.nic_argument([], ssh_forward_port=42022).split(",")
    assert parts[-1] == "hostfwd=tcp:127.0.0.1:42022-:22"
    assert "restrict=on" in parts
    with pytest.raises(ValueError):
        labnet.nic_argument([], ssh_forward_port=70000)


def test_extra_nics_are_restricted_networks_of_their_own_after_the_lab_nic():
    from bootseed.image_builder.lab import BootLab, BootOptions

    args = BootLab.extra_nic_arguments(BootOptions(extra_nics=2))
    assert args[0::2] == ["-nic", "-nic"]
    first, second = (dict(p.partition("=")[::2] for p in a.split(",")[1:]) for a in args[1::2])
    assert args[1].startswith("user,") and args[3].startswith("user,")
    assert (first["mac"], first["net"]) == ("52:54:00:12:35:01", "10.1.0.0/24")
    assert (second["mac"], second["net"]) == ("52:54:00:12:35:02", "10.2.0.0/24")
    for nic in (first, second):
        assert nic["restrict"] == "on" and nic["ipv6"] == "off"
        assert nic["model"] == "virtio-net-pci"
    # No relays on the extra NICs: the lab's servers stay on the lab NIC alone.
    assert not [a for a in args if "guestfwd" in a or "hostfwd" in a]
    assert labnet.LAB_MAC not in " ".join(args)
    assert BootLab.extra_nic_arguments(BootOptions()) == []


def test_extra_nics_out_of_range_are_refused():
    from bootseed.image_builder.lab import BootLab, BootOptions, LabError

    with pytest.raises(LabError, match="extra_nics 9"):
        BootLab.extra_nic_arguments(BootOptions(extra_nics=9))
    with pytest.raises(LabError, match="extra_nics -1"):
        BootLab.extra_nic_arguments(BootOptions(extra_nics=-1))
    with pytest.raises(ValueError, match="extra NIC 0"):
        labnet.extra_nic_mac(0)


def test_extra_nics_follow_the_lab_nic_in_the_vm_argv(tmp_path: Path):
    from bootseed.image_builder.lab import BootLab, BootOptions

    spec = qemu.VmSpec(drives=[qemu.Drive(tmp_path / "d.qcow2")],
                       nic=labnet.nic_argument([], relay="/usr/bin/socat"),
                       console_log=tmp_path / "console.log",
                       extra=BootLab.extra_nic_arguments(BootOptions(extra_nics=1)))
    argv = spec.argv()
    nics = [argv[i + 1] for i, a in enumerate(argv) if a == "-nic"]
    assert len(nics) == 2
    assert f"mac={labnet.LAB_MAC}" in nics[0] and "mac=52:54:00:12:35:01" in nics[1]
