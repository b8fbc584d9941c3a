"""bootseed fallback on temp target roots: links, grub.cfg block, grub.d script, hook, status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.image_builder import grub as image_grub
from bootseed.late.cli import main
from bootseed.late.fallback import grubcfg, grubenv, links
from bootseed.late.fallback.config import Mode, read_config
from bootseed.late.fallback.install import FallbackError, InstallOptions, install, refresh
from bootseed.late.fallback.report import fallback_status
from bootseed.late.target import TargetRoot

REPO = Path(__file__).resolve().parents[2]
GRUB_D = REPO / "grub" / "42_bootseed_fallback"
HOOK = REPO / "grub" / "zz-bootseed-fallback"
VERSION = "6.1.0-9-amd64"
CMDLINE = "root=LABEL=bootseed-root ro console=ttyS0"


def add_kernel(root: Path, version: str, payload: bytes) -> None:
    boot = root / "boot"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / f"vmlinuz-{version}").write_bytes(b"kernel " + payload)
    (boot / f"initrd.img-{version}").write_bytes(b"initrd " + payload)
    for name in ("vmlinuz", "initrd.img"):
        link = root / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(f"boot/{name}-{version}")


def make_root(base: Path, grub_cfg: str | None = None) -> Path:
    """A target root like a bootseed image: one kernel, the builder's grub.cfg and grubenv."""
    root = base / "root"
    add_kernel(root, VERSION, b"original")
    (root / "etc").mkdir(parents=True)
    (root / "etc/fstab").write_text("LABEL=bootseed-root / ext4 defaults 0 1\n")
    grub_dir = root / "boot/grub"
    grub_dir.mkdir(parents=True)
    (grub_dir / "grub.cfg").write_text(
        grub_cfg if grub_cfg is not None else image_grub.grub_cfg("bootseed-root", "quiet"))
    (grub_dir / "grubenv").write_bytes(grubenv.render({"bootseed_lab_args": "x=1"}))
    return root


def mountinfo(base: Path, root: Path, source: str, fstype: str) -> Path:
    path = base / "mountinfo"
    path.write_text(
        "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"40 21 9:0 / {root}/boot rw,relatime shared:2 - {fstype} {source} rw\n")
    return path


def opts(**kw: object) -> InstallOptions:
    defaults: dict[str, object] = {"cmdline": CMDLINE, "mountinfo": Path("/nonexistent")}
    defaults.update(kw)
    return InstallOptions(**defaults)  # type: ignore[arg-type]


def grub_script(root: Path, script: Path = GRUB_D) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BOOTSEED_ROOT=str(root))
    return subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True,
                          check=False, timeout=30)


def proc_with(base: Path, cmdline: str) -> Path:
    proc = base / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "cmdline").write_text(cmdline + "\n")
    return proc


# -- the kept kernel -----------------------------------------------------------


def test_install_hard_links_the_original_kernel(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    outcome = install(TargetRoot(root), opts())
    for name, original in (("vmlinuz", f"vmlinuz-{VERSION}"),
                           ("initrd.img", f"initrd.img-{VERSION}")):
        kept = (root / "boot/dist-kernel" / name).stat()
        orig = (root / "boot" / original).stat()
        assert (kept.st_ino, kept.st_dev) == (orig.st_ino, orig.st_dev)
        assert orig.st_nlink == 2
    assert not outcome.warnings
    manifest = links.read_manifest(TargetRoot(root))
    assert manifest is not None and manifest.version == VERSION
    assert [f.method for f in manifest.files] == ["link", "link"]


def test_kernel_without_symlinks_is_the_newest_version(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    add_kernel(root, "6.1.0-10-amd64", b"newer")
    for name in ("vmlinuz", "initrd.img"):
        (root / name).unlink()
    assert links.find_default_kernel(TargetRoot(root))[2] == "6.1.0-10-amd64"


def test_missing_kernel_is_a_clear_error(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / f"boot/initrd.img-{VERSION}").unlink()
    with pytest.raises(FallbackError, match=f"no initramfs at /boot/initrd.img-{VERSION}"):
        install(TargetRoot(root), opts())


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_copy_where_a_link_is_impossible_and_said_so(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    dist = root / "boot/dist-kernel"
    dist.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(dist)], check=True)
    try:
        outcome = install(TargetRoot(root), opts())
        assert (dist / "vmlinuz").read_bytes() == b"kernel original"
        assert (dist / "vmlinuz").stat().st_dev != (root / "boot").stat().st_dev
        assert any("copied, not linked" in w for w in outcome.warnings), outcome.warnings
        status = fallback_status(TargetRoot(root), proc=None)
        assert status.healthy, status.problems
        assert "copy of" in status.dist_kernel[0].detail
    finally:
        subprocess.run(["umount", str(dist)], check=True)


def test_reinstall_keeps_the_first_kernel_unless_forced(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    target = TargetRoot(root)
    install(target, opts())
    add_kernel(root, "6.1.0-10-amd64", b"newer")
    outcome = install(target, opts())
    assert (root / "boot/dist-kernel/vmlinuz").read_bytes() == b"kernel original"
    assert any("kept /boot/dist-kernel" in line for line in outcome.done)
    install(target, opts(force=True))
    assert (root / "boot/dist-kernel/vmlinuz").read_bytes() == b"kernel newer"


# -- grub.cfg and the grub.d script --------------------------------------------


def test_install_splices_block_and_panic_into_a_builder_grub_cfg(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts(panic=7, tries=3))
    cfg = (root / "boot/grub/grub.cfg").read_text()
    default_linux = [line for line in cfg.splitlines() if line.strip().startswith("linux /vmlinuz")]
    assert default_linux and default_linux[0].rstrip().endswith("panic=7")
    block = grubcfg.block_of(cfg)
    assert block is not None and cfg.rstrip().endswith(grubcfg.END)
    assert "menuentry 'Distribution kernel (bootseed fallback)' --id bootseed-fallback {" in block
    assert f"linux /boot/dist-kernel/vmlinuz {CMDLINE} panic=7" in block
    assert "initrd /boot/dist-kernel/initrd.img" in block
    # Counter: a fresh or unknown count starts at tries-1; each count goes one down.
    assert "  else\n    set bootseed_tries=2\n  fi\n  save_env --file $prefix/grubenv" in block
    assert 'if [ "$bootseed_tries" = 1 ]; then\n    set bootseed_tries=0' in block
    assert 'elif [ "$bootseed_tries" = 3 ]; then\n    set bootseed_tries=2' in block
    assert 'if [ "$bootseed_tries" = 0 ]; then\n  set default=bootseed-fallback' in block
    # GRUB 2.06 takes only numbers in 'fallback': ours follows the builder's one entry.
    assert "  set fallback=1\n" in block
    # Installing again replaces the block instead of adding a second one.
    install(TargetRoot(root), opts(panic=7, tries=3))
    again = (root / "boot/grub/grub.cfg").read_text()
    assert again.count(grubcfg.BEGIN) == 1 and again.count("panic=7") == 2
    assert grubenv.read(root / "boot/grub/grubenv") == {"bootseed_lab_args": "x=1",
                                                        "bootseed_tries": "3"}


@pytest.mark.skipif(shutil.which("grub-script-check") is None, reason="needs grub-common")
def test_generated_grub_cfg_passes_grub_script_check(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts())
    done = subprocess.run(["grub-script-check", str(root / "boot/grub/grub.cfg")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grub_d_script_output_for_a_fake_root(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    assert "not installed" in grub_script(root).stdout
    install(TargetRoot(root), opts())
    marker = read_config(TargetRoot(root))
    assert marker is not None
    out = grub_script(root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(grubcfg.BEGIN)
    assert f"search --no-floppy --file --set=root {marker.marker}\n" in out.stdout
    assert (root / marker.marker.lstrip("/")).is_file()
    # What the installed copy prints is what grub-mkconfig would put in grub.cfg.
    installed = grub_script(root, root / "etc/grub.d/42_bootseed_fallback")
    assert installed.stdout == out.stdout
    (root / "boot/dist-kernel/initrd.img").unlink()
    broken = grub_script(root)
    assert grubcfg.BEGIN not in broken.stdout
    assert "has no vmlinuz/initrd.img" in broken.stderr


def test_fallback_number_under_grub_mkconfig(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts())
    grub_d = root / "etc/grub.d"
    scripts = {
        "00_header": "echo 'set default=0'",
        "10_linux": ("printf \"menuentry 'a' {\\n}\\nsubmenu 'b' {\\n"
                     "\\tmenuentry 'c' {\\n\\t}\\n}\\n\""),
        "30_other": "echo \"menuentry 'd' { true; }\"",
        "50_after": "echo \"menuentry 'later' { true; }\"",
    }
    for name, body in scripts.items():
        (grub_d / name).write_text(f"#!/bin/sh\n{body}\n")
        (grub_d / name).chmod(0o755)
    (grub_d / "20_not_executable").write_text("#!/bin/sh\necho \"menuentry 'x' {}\"\n")
    env = dict(os.environ, BOOTSEED_ROOT=str(root), pkgdatadir="/usr/share/grub")
    out = subprocess.run([str(grub_d / "42_bootseed_fallback")], env=env, capture_output=True,
                         text=True, check=True, timeout=30).stdout
    assert "  set fallback=3\n" in out  # a, submenu b, d; not c (inside b) nor 'later'
    # Run by hand, neither told nor under grub-mkconfig: no guess.
    assert "set fallback=" not in grub_script(root).stdout
    assert "entry number unknown" in grub_script(root).stdout


def test_variable_mode_on_raid_has_no_counter(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    info = mountinfo(tmp_path, root, "/dev/md0", "ext4")
    outcome = install(TargetRoot(root), opts(mountinfo=info))
    config = read_config(TargetRoot(root))
    assert config is not None and config.mode is Mode.VARIABLE
    assert "software RAID" in config.mode_reason
    assert any("no boot counting" in w for w in outcome.warnings)
    block = grubcfg.block_of((root / "boot/grub/grub.cfg").read_text()) or ""
    assert "save_env" not in block and "load_env" not in block
    assert "\nset fallback=1\n" in block
    # /boot is its own filesystem there: GRUB sees the files at /dist-kernel.
    assert "linux /dist-kernel/vmlinuz" in block
    assert "bootseed_tries" not in grubenv.read(root / "boot/grub/grubenv")
    status = fallback_status(TargetRoot(root), proc=None)
    assert status.healthy and status.mode == "variable"
    assert "no boot counting" in status.text()


@pytest.mark.parametrize(("source", "fstype", "mode", "words"), [
    ("/dev/sda2", "ext4", Mode.COUNTER, "can write"),
    ("/dev/mapper/vg-boot", "ext4", Mode.VARIABLE, "LVM"),
    ("/dev/sda2", "btrfs", Mode.VARIABLE, "btrfs"),
    ("/dev/md127", "xfs", Mode.VARIABLE, "RAID"),
])
def test_mode_detection(tmp_path: Path, source: str, fstype: str, mode: Mode,
                        words: str) -> None:
    from bootseed.late.fallback.envsupport import detect_mode

    root = make_root(tmp_path)
    found, reason = detect_mode(TargetRoot(root), mountinfo(tmp_path, root, source, fstype),
                                sys_block=tmp_path / "no-sys")
    assert found is mode and words in reason


def test_mkconfig_system_gets_a_defaults_dropin_not_a_splice(tmp_path: Path) -> None:
    made = "#\n# DO NOT EDIT THIS FILE\n#\n# It is automatically generated by grub-mkconfig\n"
    root = make_root(tmp_path, grub_cfg=made)
    outcome = install(TargetRoot(root), opts(run_update_grub=False, panic=5))
    assert (root / "boot/grub/grub.cfg").read_text() == made
    assert 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX panic=5"' in (
        root / "etc/default/grub.d/bootseed-fallback.cfg").read_text()
    assert any("run update-grub" in w for w in outcome.warnings)
    assert os.access(root / "etc/grub.d/42_bootseed_fallback", os.X_OK)


# -- the kernel package hook ---------------------------------------------------


def test_kernel_hook_after_an_upgrade_leaves_dist_kernel_alone(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts())
    dist = root / "boot/dist-kernel"
    before = {p.name: (p.stat().st_ino, p.read_bytes()) for p in dist.iterdir()}
    grubenv.update(root / "boot/grub/grubenv", {"bootseed_tries": "0"})
    # The upgrade: a new kernel package, the symlinks move, the old package goes.
    add_kernel(root, "6.1.0-10-amd64", b"upgraded")
    (root / f"boot/vmlinuz-{VERSION}").unlink()
    (root / f"boot/initrd.img-{VERSION}").unlink()
    hook = root / "etc/kernel/postinst.d/zz-bootseed-fallback"
    assert hook.read_text() == HOOK.read_text()
    env = dict(os.environ, BOOTSEED_ROOT=str(root),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run([str(hook), "6.1.0-10-amd64", "/boot/vmlinuz-6.1.0-10-amd64"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    after = {p.name: (p.stat().st_ino, p.read_bytes()) for p in dist.iterdir()}
    assert after == before
    assert (dist / "vmlinuz").read_bytes() == b"kernel original"
    cfg = (root / "boot/grub/grub.cfg").read_text()
    assert "linux /boot/dist-kernel/vmlinuz" in cfg and cfg.count(grubcfg.BEGIN) == 1
    # A new kernel gets its tries again.
    assert grubenv.read(root / "boot/grub/grubenv")["bootseed_tries"] == "2"
    status = fallback_status(TargetRoot(root), proc=None)
    assert status.healthy, status.problems
    assert "is gone, this keeps the original" in status.dist_kernel[0].detail


def test_kernel_hook_never_fails_the_package(tmp_path: Path) -> None:
    root = make_root(tmp_path)  # fallback not installed: refresh fails
    env = dict(os.environ, BOOTSEED_ROOT=str(root),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(["sh", str(HOOK), "6.1.0-10-amd64"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "refresh after kernel 6.1.0-10-amd64 failed" in done.stderr


def test_refresh_requires_install(tmp_path: Path) -> None:
    with pytest.raises(FallbackError, match="not installed"):
        refresh(TargetRoot(make_root(tmp_path)))


# -- status --------------------------------------------------------------------


def test_status_healthy_fallback_and_broken(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    target = TargetRoot(root)
    missing = fallback_status(target, proc=None)
    assert not missing.installed and missing.exit_code == 1
    install(target, opts())
    healthy = fallback_status(target, proc=proc_with(tmp_path, CMDLINE))
    assert healthy.healthy and healthy.exit_code == 0 and healthy.counter == "2"
    assert "this boot: default entry" in healthy.text()
    on_fallback = fallback_status(
        target, proc=proc_with(tmp_path, f"{CMDLINE} bootseed.fallback=tries-exhausted"))
    assert on_fallback.boot.from_fallback and on_fallback.exit_code == 2
    assert "used up its boot tries" in on_fallback.text()
    # Damage in place (which a hard link shares) is found by the checksum.
    with open(root / f"boot/vmlinuz-{VERSION}", "r+b") as handle:
        handle.write(b"XXXXXX")
    broken = fallback_status(target, proc=None)
    assert broken.exit_code == 1
    assert any("changed since install" in p for p in broken.problems)


def test_status_counter_used_up_and_cfg_without_entry(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts())
    grubenv.update(root / "boot/grub/grubenv", {"bootseed_tries": "0"})
    status = fallback_status(TargetRoot(root), proc=None)
    assert "the counter is used up" in status.text()
    (root / "boot/grub/grub.cfg").write_text(image_grub.grub_cfg("bootseed-root", "quiet"))
    status = fallback_status(TargetRoot(root), proc=None)
    assert any("has no fallback entry" in p for p in status.problems)


def test_status_counter_mode_without_a_usable_grubenv(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts())
    env = root / "boot/grub/grubenv"
    env.unlink()
    status = fallback_status(TargetRoot(root), proc=None)
    assert status.exit_code == 1 and "GRUB cannot count boots" in status.text()
    env.write_bytes(b"# GRUB Environment Block\nbootseed_tries=2\n")  # not 1024 bytes
    status = fallback_status(TargetRoot(root), proc=None)
    assert any("a GRUB environment block has 1024" in p for p in status.problems)
    env.unlink()
    refresh(TargetRoot(root))
    assert fallback_status(TargetRoot(root), proc=None).healthy


def test_cli_install_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path)
    assert main(["fallback", "status", "--root", str(root)]) == 1
    assert "not installed" in capsys.readouterr().out
    assert main(["fallback", "install", "--root", str(root), "--cmdline", CMDLINE,
                 "--tries", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mode"] in ("counter", "variable") and doc["dist_kernel"]["version"] == VERSION
    assert main(["fallback", "status", "--root", str(root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["healthy"] is True and status["tries"] == 4
    assert main(["fallback", "install", "--root", str(root), "--tries", "12",
                 "--cmdline", CMDLINE]) == 1
    assert "tries must be 1..9" in capsys.readouterr().err
    assert main(["fallback", "install", "--root", str(root), "--kernel", "/boot/x"]) == 1
    assert "--kernel and --initrd go together" in capsys.readouterr().err


def test_each_kernel_argument_is_its_own_grub_word(tmp_path: Path) -> None:
    # GRUB wraps an argument holding a space in double quotes: the kernel would see one
    # parameter (and no console=). Characters special to GRUB script get single quotes.
    root = make_root(tmp_path)
    install(TargetRoot(root), opts(cmdline="root=UUID=1-2 ro  ds=nocloud;s=http://h/ x=$y"))
    block = grubcfg.block_of((root / "boot/grub/grub.cfg").read_text()) or ""
    assert ("linux /boot/dist-kernel/vmlinuz root=UUID=1-2 ro 'ds=nocloud;s=http://h/' "
            "'x=$y' panic=10 ") in block


def test_default_cmdline_from_fstab(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    install(TargetRoot(root), opts(cmdline=None))
    config = read_config(TargetRoot(root))
    assert config is not None and config.cmdline == "root=LABEL=bootseed-root ro"
