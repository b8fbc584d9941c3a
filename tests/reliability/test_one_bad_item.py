"""One bad item is one problem naming it; every other part and value still applies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.bounded import run_bounded
from tests.reliability.engine_child import ENGINE_SETUP, multipart

GOOD_BEFORE = b"#cloud-config\nbefore: 1\n"
GOOD_AFTER = b"#cloud-config\nafter: 2\n"
LONG_HEX = "0x" + "F" * 4000  # ~4,800 decimal digits: past Python's int-to-text limit


def _engine(raw: bytes) -> dict:
    outcome = run_bounded(ENGINE_SETUP + f"\nRAW = {raw!r}\n", "RESULT = summary(process(RAW))")
    assert outcome.seconds < 10 and outcome.rss_growth_mb < 300, outcome
    assert isinstance(outcome.result, dict)
    return outcome.result


def test_integer_too_long_for_text_is_dropped_alone() -> None:
    bad = (
        f"#cloud-config\nkeep: 1\nhuge: {LONG_HEX}\nlist: [a, {LONG_HEX}, b]\n"
        f"? {LONG_HEX}\n: as a key\n"
    ).encode()
    result = _engine(multipart(GOOD_BEFORE, bad, GOOD_AFTER))
    assert result["config"] == {"before": 1, "keep": 1, "list": ["a", "b"], "after": 2}
    wheres = sorted(where for where, _ in result["problems"])
    assert wheres == [f"user-data part 2 line {n}" for n in (3, 4, 5)]
    assert all("digits" in message for _, message in result["problems"])


def test_userdata_render_cli_reports_a_too_long_integer_without_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "user-data"
    path.write_text(f"#cloud-config\nruncmd: [date]\nhuge: {LONG_HEX}\n")
    done = subprocess.run(
        [sys.executable, "-m", "bootseed.late.cli", "userdata", "render", "--json", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    doc = json.loads(done.stdout)
    assert doc["cloud_config"] == {"runcmd": ["date"]}
    assert [p["where"] for p in doc["problems"]] == ["user-data line 3"]


@pytest.mark.parametrize("charset", ["undefined", "punycode", "utf\\x008"])
def test_unusable_mime_charset_costs_only_its_part(charset: str) -> None:
    name = charset.encode().decode("unicode_escape").encode("latin-1")
    raw = (
        b"Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n"
        b"--B\nContent-Type: text/cloud-config\n\n" + GOOD_BEFORE + b"\n"
        b'--B\nContent-Type: text/cloud-config; charset="' + name + b'"\n\n'
        b"#cloud-config\nodd: 1\n"
        b"--B\nContent-Type: text/cloud-config\n\n" + GOOD_AFTER + b"\n--B--\n"
    )
    result = _engine(raw)
    assert result["config"] == {"before": 1, "after": 2}
    assert [where for where, _ in result["problems"]] == ["user-data part 2"]
    assert "charset" in result["problems"][0][1]


def test_json_patch_with_a_too_long_integer_costs_only_its_part() -> None:
    patch = b'#cloud-config-jsonp\n[{"op": "add", "path": "/n", "value": ' + b"9" * 5000 + b"}]"
    result = _engine(multipart(GOOD_BEFORE, patch, GOOD_AFTER))
    assert result["config"] == {"before": 1, "after": 2}
    assert [where for where, _ in result["problems"]] == ["user-data part 2"]
