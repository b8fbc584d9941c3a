import io
import json
from pathlib import Path

import pytest
from bootseed.image_builder import cli
from bootseed.image_builder.basetree import BaseTreeSpec
from bootseed.image_builder.manifest import (
    ImageFile,
    ImageManifest,
    read_manifest,
    write_manifest,
)
from bootseed.image_builder.progress import Progress


@pytest.mark.parametrize("verb", ["build", "boot", "seed-iso", "catalog", "site"])
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([verb, "--help"])
    assert exc.value.code == 0
    assert "--json" in capsys.readouterr().out


def test_boot_without_manifest_is_a_one_line_error(tmp_path: Path, capsys):
    image = tmp_path / "x.raw"
    image.write_bytes(b"")
    assert cli.main(["boot", str(image), "--workdir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[-1].startswith("bootseed-image boot: ")
    assert "no build manifest" in err[-1]


def test_bad_disk_spec_is_refused(tmp_path: Path, capsys):
    image = tmp_path / "x.raw"
    image.write_bytes(b"")
    write_manifest(_manifest(image), image)
    assert cli.main(["boot", str(image), "--disk", "no-size",
                     "--workdir", str(tmp_path / "w")]) == 1
    assert "expected LABEL:SIZE" in capsys.readouterr().err


def test_bad_root_size_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["build", "--root-size", "lots"])
    assert exc.value.code == 2
    assert "not a size" in capsys.readouterr().err


def test_seed_iso_missing_source(tmp_path: Path, capsys):
    rc = cli.main(["seed-iso", "cidata", str(tmp_path / "nope"), "-o", str(tmp_path / "o.iso")])
    assert rc == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_seed_iso_cidata_json(tmp_path: Path, capsys):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "meta-data").write_text("instance-id: i-1\n")
    (seed / "user-data").write_text("#cloud-config\n")
    out = tmp_path / "seed.iso"
    assert cli.main(["seed-iso", "cidata", str(seed), "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["size"] == out.stat().st_size > 0
    assert len(info["sha256"]) == 64


def _manifest(image: Path) -> ImageManifest:
    return ImageManifest(
        name="t", files=[ImageFile(str(image), "raw", 1, 1, "")], root_label="r",
        root_fs_uuid="u", root_size=1, root_offset=2097152, grubenv_offset=4096,
        kernel_version="6.1", kernel_args="", base_key="k", base_reused=True,
        bootseed_debs=["bootseed_0.1_all.deb"], initramfs_hook=False, packages={"a": "1"})


def test_manifest_round_trip(tmp_path: Path):
    image = tmp_path / "img.raw"
    manifest = _manifest(image)
    path = write_manifest(manifest, image)
    assert path.name == "img.raw.manifest.json"
    assert read_manifest(image) == manifest
    path.write_text(json.dumps({**manifest.to_json(), "format": 99}))
    with pytest.raises(ValueError, match="not supported"):
        read_manifest(image)


def test_progress_counts_and_times_steps():
    stream = io.StringIO()
    progress = Progress(total=2, stream=stream)
    with progress.step("first") as step:
        step.note = "cached"
    with pytest.raises(RuntimeError), progress.step("second"):
        raise RuntimeError("boom")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/2] first ..."
    assert lines[1].startswith("[1/2] first ... ") and lines[1].endswith("s (cached)")
    assert lines[3].startswith("[2/2] second ... FAILED ")
    assert [r.outcome for r in progress.records] == ["ok", "failed"]


def test_base_key_depends_on_the_package_set_only():
    a = BaseTreeSpec(packages=("b", "a"))
    assert a.key() == BaseTreeSpec(packages=("a", "b", "a")).key()
    assert a.key() != BaseTreeSpec(packages=("a", "b", "c")).key()
    assert a.key() != BaseTreeSpec(packages=("a", "b"), suite="trixie").key()
