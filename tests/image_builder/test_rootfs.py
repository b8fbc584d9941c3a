import os
from pathlib import Path

import pytest
from bootseed.image_builder import rootfs

REPO = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "root"
    for rel in ("usr/lib/systemd/system", "etc/systemd/system", "etc/ssh", "usr/bin"):
        (tree / rel).mkdir(parents=True)
    return tree


@pytest.mark.skipif(os.geteuid() != 0, reason="systemctl --root needs root")
def test_units_and_generator_install_like_the_package(tmp_path: Path):
    tree = _tree(tmp_path)
    installed = rootfs.install_units(tree, REPO / "systemd")
    assert "bootseed.service" in installed
    unit = tree / "usr/lib/systemd/system/bootseed.service"
    assert unit.read_text() == (REPO / "systemd/bootseed.service").read_text()
    for name in installed:
        if name.endswith("-generator"):
            path = tree / "usr/lib/systemd/system-generators" / name
            assert os.access(path, os.X_OK)


def test_no_units_is_an_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(rootfs.RootfsError, match="no systemd units"):
        rootfs.install_units(_tree(tmp_path), tmp_path / "empty")


@pytest.mark.skipif(os.geteuid() != 0, reason="systemctl --root needs root")
def test_configure_system_makes_a_first_boot(tmp_path: Path):
    tree = _tree(tmp_path)
    units = tree / "usr/lib/systemd/system"
    (units / "systemd-networkd.service").write_text(
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
    (units / "systemd-firstboot.service").write_text("[Service]\nExecStart=/bin/true\n")
    (tree / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (tree / "etc/resolv.conf").write_text("nameserver 10.255.255.53\n")
    rootfs.configure_system(tree, "bootseed-root", "debian")
    assert (tree / "etc/machine-id").read_text() == "uninitialized\n"
    assert not list((tree / "etc/ssh").glob("ssh_host_*"))
    assert (tree / "etc/resolv.conf").read_text() == ""
    assert "LABEL=bootseed-root\t/\text4" in (tree / "etc/fstab").read_text()
    assert (tree / "etc/hostname").read_text() == "debian\n"
    assert (tree / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service").exists()
    masked = tree / "etc/systemd/system/systemd-firstboot.service"
    assert masked.is_symlink() and os.readlink(masked) == "/dev/null"


def test_initramfs_hook_absent_is_reported(tmp_path: Path):
    assert rootfs.install_initramfs_hook(_tree(tmp_path), tmp_path / "nope", "6.1") is False
