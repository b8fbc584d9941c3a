"""Whatever the CLI and the status files write as JSON, a strict parser reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from bootseed.late import jsonout


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_become_strings() -> None:
    doc = {"nan": math.nan, "up": math.inf, "down": [-math.inf], math.inf: 1}
    assert _strict(jsonout.dumps(doc, sort_keys=False)) == {
        "nan": "nan", "up": "inf", "down": ["-inf"], "inf": 1,
    }


def test_userdata_render_json_with_yaml_nan_and_inf(tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    path.write_text("#cloud-config\na: .nan\nb: -.inf\nc: [.inf]\n")
    done = subprocess.run(
        [sys.executable, "-m", "bootseed.late.cli", "userdata", "render", "--json", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    doc = _strict(done.stdout)
    assert isinstance(doc, dict)
    assert doc["cloud_config"] == {"a": "nan", "b": "-inf", "c": ["inf"]}
