"""A hostile kernel command line never crashes the parser or costs the seed.

Every parameter is interpreted on its own: a malformed URL, port or value is a
problem naming that parameter, and a valid local seed is still found.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bootseed.contract.cmdline import parse
from hypothesis import given, settings
from hypothesis import strategies as st

_ALPHABET = st.sampled_from([*'ds=nocloud;s:/[]%@?#"\\ -1.ehtp', "\x00", "\u2028", "é"])
_WORDS = ["ds=nocloud;s=", "seedfrom=", "cloud-config-url=", "bootseed.timeout=", "ip=",
          "bootseed.root=", "bootseed.overlay=", "bootseed.rescue=", "bootseed.net=",
          "bootseed=", "bootseed.fallback=", "http://", "[", "]", ":", '"']


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_WORDS), st.text(_ALPHABET, max_size=12)),
                max_size=12))
def test_parse_never_raises(pieces: list[str]) -> None:
    params = parse(" ".join(pieces) + " " + "".join(pieces))
    for problem in params.problems:
        assert problem.where.startswith("kernel command line")


def test_a_broken_seed_url_still_finds_the_local_seed(tmp_path: Path) -> None:
    seed = tmp_path / "var/lib/cloud/seed/nocloud"
    seed.mkdir(parents=True)
    (seed / "meta-data").write_text("instance-id: i-local\n")
    (seed / "user-data").write_text("#cloud-config\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bootseed.late.cli", "seed", "fetch", "--json", "--no-discs",
         "--root", str(tmp_path), "--dmi-dir", str(tmp_path / "no-dmi"),
         "--cmdline", "ds=nocloud;s=http://[::1 seedfrom=http://h:99999/"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert '"instance_id": "i-local"' in proc.stdout or '"i-local"' in proc.stdout
    assert "not a usable URL" in proc.stdout
