"""The image build step on an image-like tree (the builder's own grub.cfg and grubenv)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from bootseed.image_builder import grub as image_grub
from bootseed.image_builder.fallback import FallbackStepError, install_fallback
from bootseed.late.fallback import grubcfg, grubenv
from bootseed.late.fallback.report import fallback_status
from bootseed.late.target import TargetRoot

from .test_fallback import VERSION, make_root

ARGS = "console=tty0 console=ttyS0,115200 net.ifnames=1"


def test_install_fallback_in_an_image_tree(tmp_path: Path) -> None:
    root = make_root(tmp_path, grub_cfg=image_grub.grub_cfg("bootseed-root", ARGS))
    (root / "boot/grub/grubenv").write_bytes(
        image_grub.grubenv_block({image_grub.LAB_ARGS_VAR: ""}))
    assert install_fallback(root, "bootseed-root", ARGS) == (
        f"kernel {VERSION} kept in /boot/dist-kernel")
    cfg = (root / "boot/grub/grub.cfg").read_text()
    block = grubcfg.block_of(cfg) or ""
    assert (f"linux /boot/dist-kernel/vmlinuz root=LABEL=bootseed-root ro {ARGS} panic=10 "
            "bootseed.fallback=$bootseed_fallback_reason $bootseed_lab_args") in block
    assert "panic=10" in cfg.split(grubcfg.BEGIN)[0]
    # The lab's reader of the block still finds its variable; ours is next to it.
    env = (root / "boot/grub/grubenv").read_bytes()
    assert image_grub.parse_grubenv(env) == {image_grub.LAB_ARGS_VAR: "",
                                             "bootseed_tries": "2"}
    assert grubenv.parse(env)["bootseed_tries"] == "2"
    status = fallback_status(TargetRoot(root), proc=None)
    assert status.healthy, status.problems
    assert status.mode_reason == "image build: /boot/grub on the root ext4 filesystem"
    if shutil.which("grub-script-check"):
        subprocess.run(["grub-script-check", str(root / "boot/grub/grub.cfg")], check=True)


def test_install_fallback_without_grub_cfg_fails_the_step(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "boot/grub/grub.cfg").unlink()
    with pytest.raises(FallbackStepError, match=r"no /boot/grub/grub\.cfg"):
        install_fallback(root, "bootseed-root", ARGS)
