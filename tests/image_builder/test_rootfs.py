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



def test_initramfs_ssh_keys_are_checked_and_written(tmp_path: Path):
    import subprocess

    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f", str(key)],
                   check=True)
    public = key.with_suffix(".pub").read_text().strip()
    tree = tmp_path / "root"
    assert rootfs.install_initramfs_ssh_keys(tree, ()) is None
    assert not (tree / "etc/bootseed").exists()
    path = rootfs.install_initramfs_ssh_keys(tree, (public,))
    assert path == tree / "etc/bootseed/initramfs-authorized-keys"
    assert path.read_text() == public + "\n"
    with pytest.raises(ValueError, match="key 2 is not an OpenSSH public key"):
        rootfs.install_initramfs_ssh_keys(tree, (public, "-----BEGIN OPENSSH PRIVATE KEY-----"))
