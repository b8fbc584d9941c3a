"""``python3 -m bootseed.early``: both verbs on the shared pattern, usage errors as one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.early.__main__ import main


def test_usage_errors_are_one_line_with_status_2(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["premount", "--dhcp-timeout", "0", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == ("python3 -m bootseed.early premount: --dhcp-timeout: "
                                       "needs seconds above 0 and at most 600\n")
    assert not (tmp_path / "out").exists()
    assert main(["rootswitch", "--rootmnt", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python3 -m bootseed.early rootswitch: --rootmnt ")
    assert err.endswith(": not a directory\n") and err.count("\n") == 1


def test_help_for_each_verb_and_premount_does_not_load_rootswitch() -> None:
    for verb in ("premount", "rootswitch"):
        proc = subprocess.run([sys.executable, "-m", "bootseed.early", verb, "--help"],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and f"bootseed.early {verb}" in proc.stdout
    code = ("import sys\nfrom bootseed.early.__main__ import PROGRAM\n"
            "from bootseed.contract.cli import build_parser\n"
            "build_parser(PROGRAM, 'premount')\n"
            "print('bootseed.early.rootswitch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
