"""``bootseed-image build --agent``: option, dispatch and refusals (no image is built)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.image_builder import cli
from bootseed.image_builder.build import BuildError, BuildOptions, build_image
from bootseed.image_builder.lab import BootLab, BootOptions


def test_build_help_documents_agent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    out = capsys.readouterr().out
    assert "--agent {bootseed,cloud-init}" in out
    assert "cloud-init" in out


def test_unknown_agent_and_qcow2_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown agent"):
        build_image(BuildOptions(out_dir=tmp_path, agent="ignition"), quiet=True)
    with pytest.raises(BuildError, match="raw images only"):
        build_image(BuildOptions(out_dir=tmp_path, agent="cloud-init",
                                 formats=("raw", "qcow2")), quiet=True)


def test_nocloud_spelling_on_the_kernel_command_line() -> None:
    lab = BootLab.__new__(BootLab)
    plain = lab.kernel_args(BootOptions(nocloud_dir=Path("seed")))
    assert "ds=nocloud;s=http://169.254.100.1/" in plain.split()
    cloud = lab.kernel_args(BootOptions(nocloud_dir=Path("seed"),
                                        nocloud_cmdline="ds=nocloud-net;s={url}"))
    assert "ds=nocloud-net;s=http://169.254.100.1/" in cloud.split()
    assert not any(w.startswith("ds=nocloud;") for w in cloud.split())
