"""``bootseed seed fetch`` (late/commands/seed.py), driven through the real CLI."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from bootseed.contract.seedcache import read_seed_cache
from bootseed.image_builder.mocks.imds import MockImds
from bootseed.late.cli import main
from bootseed.late.commands.seed import redacted

from .seedhelpers import make_dmi, write_seed_dir


def test_json_from_ec2_mock_and_cache_written(tmp_path, capsys):
    with MockImds({"instance-id": "i-cli", "local-hostname": "cli"}, b"#cloud-config\n",
                  mode="v2-required") as imds:
        rc = main(["seed", "fetch", "--json", "--cmdline", "bootseed.ds=ec2", "--no-discs",
                   "--root", str(tmp_path), "--dmi-dir", make_dmi(tmp_path),
                   "--ec2-endpoint", imds.url, "--out", str(tmp_path / "run")])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "ec2" and doc["stage"] == "late"
    assert doc["instance_id"] == "i-cli"
    cached = read_seed_cache(tmp_path / "run")
    assert cached is not None and cached.payloads["user-data"] == b"#cloud-config\n"
    mode = stat.S_IMODE(os.stat(tmp_path / "run" / "user-data").st_mode)
    assert mode == 0o600


def test_human_output_from_seed_dir(tmp_path, capsys):
    write_seed_dir(tmp_path / "var/lib/bootseed/seed/nocloud",
                   {"meta-data": "instance-id: i-h\nlocal-hostname: hh\n"})
    rc = main(["seed", "fetch", "--cmdline", "", "--no-discs", "--root", str(tmp_path),
               "--dmi-dir", make_dmi(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "source:      nocloud" in out and "instance-id: i-h" in out
    assert "hostname:    hh" in out


def test_no_seed_exits_3_with_one_line_reason(tmp_path):
    script = Path(sys.executable).parent / "bootseed"
    proc = subprocess.run(
        [str(script), "seed", "fetch", "--cmdline", "quiet",
         "--no-discs", "--root", str(tmp_path), "--dmi-dir", make_dmi(tmp_path)],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.strip() == "bootseed seed: no seed found"
    assert "source:      none" in proc.stdout


def test_bad_timeout_is_a_one_line_error(tmp_path, capsys):
    rc = main(["seed", "fetch", "--timeout", "0", "--cmdline", "", "--root", str(tmp_path)])
    assert rc == 1
    assert capsys.readouterr().err.strip() == "bootseed seed: --timeout must be above 0, got 0"


def test_redacted_hides_sensitive_values():
    doc = {"metadata": {"instance-id": "x", "sensitive": {"password": "hunter2"}}}
    shown = redacted(doc)
    assert shown["metadata"]["sensitive"] == {"password": "<redacted>"}
    assert doc["metadata"]["sensitive"]["password"] == "hunter2"
