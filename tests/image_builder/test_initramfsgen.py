"""The initramfs generator option: base tree package swap, the build and CLI wiring,
the manifest field, and reading dracut's ``lsinitrd`` listing."""

import io
from pathlib import Path

import pytest
from bootseed.image_builder import cli, initramfsgen, pipeline
from bootseed.image_builder.basetree import DEFAULT_PACKAGES, BaseTree, BaseTreeSpec
from bootseed.image_builder.build import BuildError, BuildOptions, build_image
from bootseed.image_builder.manifest import ImageManifest
from bootseed.image_builder.progress import Progress

# lsinitrd's output from bookworm's dracut 059 (trimmed): a header, then ls -l lines.
LSINITRD = """\
Image: /boot/initrd.img-6.1.0-57-cloud-amd64: 28M
========================================================================
Version:

Arguments:  -q --force --kver 6.1.0-57-cloud-amd64

dracut modules:
systemd
bootseed
========================================================================
drwxr-xr-x  12 root     root            0 Dec  1 09:28 .
lrwxrwxrwx   1 root     root            7 Dec  1 09:28 bin -> usr/bin
-rwxr-xr-x   1 root     root          662 Dec  1 09:28 usr/lib/dracut/hooks/pre-mount/\
50-bootseed-premount.sh
-rw-r--r--   1 root     root       672008 Oct 21 09:54 usr/lib/x86_64-linux-gnu/libssl.so.3
========================================================================
"""


def test_dracut_takes_initramfs_tools_place_in_the_base_packages():
    swapped = initramfsgen.base_packages(DEFAULT_PACKAGES, "dracut")
    assert "initramfs-tools" in DEFAULT_PACKAGES
    assert "initramfs-tools" not in swapped and swapped.count("dracut") == 1
    assert set(swapped) - {"dracut"} == set(DEFAULT_PACKAGES) - {"initramfs-tools"}
    # Idempotent, and the default generator leaves the list as it is.
    assert initramfsgen.base_packages(swapped, "dracut") == swapped
    assert initramfsgen.base_packages(DEFAULT_PACKAGES, "initramfs-tools") == DEFAULT_PACKAGES
    # So each generator has a base tree of its own in the cache.
    assert BaseTreeSpec(packages=swapped).key() != BaseTreeSpec().key()


def test_unknown_generator_names_the_choices():
    with pytest.raises(ValueError, match=r"mkinitcpio.*initramfs-tools, dracut"):
        initramfsgen.generator("mkinitcpio")


def test_lsinitrd_listing_is_read_as_paths():
    assert initramfsgen.lsinitrd_paths(LSINITRD) == [
        ".", "bin", "usr/lib/dracut/hooks/pre-mount/50-bootseed-premount.sh",
        "usr/lib/x86_64-linux-gnu/libssl.so.3"]
    assert initramfsgen.DRACUT.early_marker in initramfsgen.lsinitrd_paths(LSINITRD)


def test_build_refuses_an_unknown_generator_before_any_work(tmp_path: Path):
    with pytest.raises(BuildError, match="unknown initramfs generator"):
        build_image(BuildOptions(out_dir=tmp_path / "out", initramfs="mkinitcpio"), quiet=True)
    assert not (tmp_path / "out").exists()


def test_cloud_init_image_is_built_with_initramfs_tools_only(tmp_path: Path):
    with pytest.raises(BuildError, match="initramfs-tools only"):
        build_image(BuildOptions(out_dir=tmp_path, agent="cloud-init", initramfs="dracut"),
                    quiet=True)


def test_the_job_asks_for_the_base_tree_with_the_generator_swapped(tmp_path: Path,
                                                                   monkeypatch):
    asked: list[BaseTreeSpec] = []

    def fake_base(spec: BaseTreeSpec, cache: Path, log=None) -> BaseTree:
        asked.append(spec)
        return BaseTree(spec=spec, key=spec.key(), root=tmp_path, kernel_version="6.1",
                        reused=True)

    monkeypatch.setattr(pipeline, "ensure_base_tree", fake_base)
    options = BuildOptions(out_dir=tmp_path, cache=tmp_path / "cache", initramfs="dracut")
    job = pipeline.ImageJob.start(options, Progress(total=1, quiet=True))
    job.base_tree(io.StringIO())
    [spec] = asked
    assert "dracut" in spec.packages and "initramfs-tools" not in spec.packages


def test_cli_flag_reaches_the_build_options(monkeypatch, capsys):
    seen: list[BuildOptions] = []

    def fake_build(options: BuildOptions, stream=None, quiet=False):
        seen.append(options)
        raise BuildError("stopped by the test")

    monkeypatch.setattr("bootseed.image_builder.build.build_image", fake_build)
    assert cli.main(["build", "--initramfs", "dracut"]) == 1
    assert seen[0].initramfs == "dracut"
    assert "stopped by the test" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["build", "--initramfs", "mkinitcpio"])
    assert exc.value.code == 2


def test_manifest_records_the_generator_and_reads_older_ones():
    data = ImageManifest(
        name="x", files=[], root_label="r", root_fs_uuid="u", root_size=1, root_offset=2,
        grubenv_offset=3, kernel_version="k", kernel_args="", base_key="b",
        base_reused=True, bootseed_debs=[], initramfs_hook=True, packages={},
        initramfs="dracut").to_json()
    assert ImageManifest.from_json(data).initramfs == "dracut"
    del data["initramfs"]
    assert ImageManifest.from_json(data).initramfs == "initramfs-tools"
