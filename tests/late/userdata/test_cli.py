from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.late.cli import main

from .helpers import P, multipart


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["userdata", "render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_shape_and_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ud = tmp_path / "ud"
    ud.write_bytes(
        multipart(P(b"#cloud-config\nruncmd: [a]\n", filename="c.yaml"), P(b"#!/bin/sh\n"))
    )
    code, out, _ = _run(capsys, str(ud), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"parts", "cloud_config", "problems"}
    assert doc["cloud_config"] == {"runcmd": ["a"]}
    assert doc["problems"] == []
    assert set(doc["parts"][0]) == {
        "index",
        "content_type",
        "filename",
        "launch_index",
        "source",
        "size",
        "sha256",
    }
    assert [p["filename"] for p in doc["parts"]] == ["c.yaml", "part-002"]


def test_problems_exit_one_and_name_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ud = tmp_path / "ud"
    ud.write_bytes(b"#cloud-config\nruncmd: [\n")
    code, out, _ = _run(capsys, str(ud), "--json")
    assert code == 1
    assert json.loads(out)["problems"][0]["where"].startswith("user-data line ")
    code, out, _ = _run(capsys, str(ud))
    assert code == 1
    assert "problems (1):" in out
    assert "user-data line 3" in out


def test_vendor_data_launch_index_and_instance_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ud = tmp_path / "ud"
    ud.write_bytes(
        multipart(
            P(b"## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n"),
            P(b"#!/bin/sh\n", filename="only-1.sh", headers={"Launch-Index": "1"}),
        )
    )
    vd = tmp_path / "vd"
    vd.write_bytes(b"#cloud-config\nhostname: vendor\nntp: {enabled: true}\n")
    idata = tmp_path / "instance-data.json"
    idata.write_text(json.dumps({"v1": {"local_hostname": "node-7"}}))
    code, out, _ = _run(
        capsys,
        str(ud),
        "--vendor-data",
        str(vd),
        "--launch-index",
        "0",
        "--instance-data",
        str(idata),
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["cloud_config"] == {"hostname": "node-7", "ntp": {"enabled": True}}
    assert [p["source"] for p in doc["parts"]] == ["vendor-data", "user-data part 1 (rendered)"]


def test_max_bytes_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    ud = tmp_path / "ud.gz"
    ud.write_bytes(gzip.compress(b"#!/bin/sh\n" + b"#" * 5000))
    assert _run(capsys, str(ud), "--max-bytes", "1000", "--json")[0] == 1
    assert _run(capsys, str(ud), "--json")[0] == 0


def test_usage_errors_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(tmp_path / "missing"))
    assert code == 2
    assert "cannot read FILE" in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    ud = tmp_path / "ud"
    ud.write_bytes(b"#!/bin/sh\n")
    code, _, err = _run(capsys, str(ud), "--instance-data", str(bad))
    assert code == 2
    assert "not valid JSON" in err
    with pytest.raises(SystemExit) as exc:
        main(["userdata", "render", str(ud), "--launch-index", "x"])
    assert exc.value.code == 2


def test_stdin_and_help_via_the_console_script() -> None:
    exe = Path(sys.executable).parent / "bootseed"
    proc = subprocess.run(
        [str(exe), "userdata", "render", "-", "--json"],
        input=b"#cloud-config\na: 1\n",
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cloud_config"] == {"a": 1}
    helped = subprocess.run(
        [str(exe), "userdata", "render", "--help"], capture_output=True, check=False, timeout=60
    )
    assert helped.returncode == 0
    assert b"--launch-index" in helped.stdout


def test_engine_import_is_lazy() -> None:
    code = (
        "import sys\n"
        "from bootseed.late.userdata.engine import process\n"
        "r = process(b'#cloud-config\\na: 1\\n')\n"
        "assert r.cloud_config == {'a': 1}\n"
        "print(sorted(m for m in ('requests', 'jinja2', 'urllib3') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "[]"


def test_every_part_is_listed_with_what_became_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ud = tmp_path / "ud"
    ud.write_bytes(
        multipart(
            P(b"#cloud-config\nruncmd: [a]\n", filename="good.yaml"),
            P(b"#cloud-config\nruncmd: [a\n  x: : :\n", filename="bad.yaml"),
            P(b"hello world\n", content_type="text/x-unknown-thing"),
            P(b"#cloud-config\nlaunch-index: 7\nruncmd: [b]\n", filename="other.yaml"),
            P(b"#include\nhttp://127.0.0.1:9/x\n"),
        )
    )
    code, out, _ = _run(capsys, str(ud), "--json", "--launch-index", "0",
                        "--include-timeout", "0.5")
    assert code == 1
    doc = json.loads(out)
    # "parts" keeps its shape: only the parts that are used.
    assert [p["filename"] for p in doc["parts"]] == ["good.yaml"]
    records = doc["all_parts"]
    # The include's URL that could not be fetched is a failed part of its own (issue 20).
    assert [r["status"] for r in records] == ["used", "failed", "ignored", "skipped",
                                              "unpacked", "failed"]
    assert set(records[0]) == {"where", "content_type", "filename", "size", "status", "reason"}
    assert records[1]["filename"] == "bad.yaml" and "invalid YAML" in records[1]["reason"]
    assert "not handled" in records[2]["reason"]
    assert "launch index 7" in records[3]["reason"]
    assert all(r["size"] for r in records[:5])
    assert records[5]["where"].endswith("include http://127.0.0.1:9/x")
    assert "include not fetched" in records[5]["reason"]

    code, out, _ = _run(capsys, str(ud), "--launch-index", "0", "--include-timeout", "0.5")
    assert "every part met (6):" in out
    assert "failed" in out and "skipped" in out
