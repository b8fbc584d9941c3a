"""What the initramfs-tools hook copies in for the SSH server (bootseed.early.sshdfiles)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bootseed.early.sshdfiles import initramfs_files

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "initramfs-hooks" / "initramfs-tools" / "hooks" / "bootseed"


def _tree(root: Path, files: dict[str, int]) -> Path:
    for path, mode in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(mode)
    return root


def test_the_list_from_a_tree(tmp_path: Path):
    root = _tree(tmp_path, {"/usr/sbin/dropbear": 0o755, "/usr/bin/dropbearkey": 0o755,
                            "/sbin/e2fsck": 0o755, "/usr/sbin/blkid": 0o755,
                            "/usr/sbin/fsck": 0o755, "/usr/sbin/blkid.bak": 0o644})
    files = initramfs_files(root)
    # Not fsck: with it initramfs-tools would check the root on every boot, without logsave.
    assert files.executables == ["/usr/sbin/dropbear", "/usr/bin/dropbearkey", "/sbin/e2fsck",
                                 "/usr/sbin/blkid"]
    assert files.missing == []


def test_without_dropbear_the_command_fails_naming_it(tmp_path: Path):
    root = _tree(tmp_path, {"/usr/sbin/e2fsck": 0o755})
    assert initramfs_files(root).missing == ["dropbear", "dropbearkey"]
    proc = subprocess.run([sys.executable, "-m", "bootseed.early.sshdfiles", "--root", str(root)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "dropbear, dropbearkey (package dropbear-bin)" in proc.stderr
    assert proc.stdout == ""


def _run_hook(tmp_path: Path, sshd_setting: str) -> tuple[str, str]:
    """The real hook with initramfs-tools' functions replaced by recorders."""
    log = tmp_path / "copied"
    fake = tmp_path / "hook-functions"
    fake.write_text(f'copy_exec() {{ echo "$1" >>{log}; }}\nmanual_add_modules() {{ :; }}\n')
    hook = tmp_path / "hook"
    hook.write_text(HOOK.read_text().replace(". /usr/share/initramfs-tools/hook-functions",
                                             f". {fake}"))
    conf = tmp_path / "conf" / "conf.d"
    conf.mkdir(parents=True)
    (conf / "bootseed").write_text(f'BOOTSEED_VENV="{Path(sys.executable).parent.parent}"\n'
                                   f'BOOTSEED_WITH=""\nBOOTSEED_SSHD={sshd_setting}\n')
    dest = tmp_path / "dest"
    dest.mkdir()
    proc = subprocess.run(["sh", str(hook)], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DESTDIR": str(dest),
                               "CONFDIR": str(tmp_path / "conf")})
    assert proc.returncode == 0, proc.stderr
    copied = log.read_text() if log.exists() else ""
    return copied, (dest / "etc" / "bootseed-early.conf").read_text()


def test_the_hook_copies_the_listed_files_and_writes_the_switch(tmp_path: Path):
    copied, conf = _run_hook(tmp_path, "yes")
    listed = initramfs_files(Path("/")).executables
    assert listed[:2] == ["/usr/sbin/dropbear", "/usr/bin/dropbearkey"]
    assert all(f"{path}\n" in copied for path in listed)
    assert "BOOTSEED_SSHD=yes" in conf
    assert (tmp_path / "dest" / "usr/sbin/bootseed-continue").stat().st_mode & 0o111


def test_the_hook_leaves_the_server_out_when_told(tmp_path: Path):
    copied, conf = _run_hook(tmp_path, "no")
    assert "dropbear" not in copied
    assert "BOOTSEED_SSHD=no" in conf
    assert not (tmp_path / "dest" / "usr/sbin/bootseed-continue").exists()
