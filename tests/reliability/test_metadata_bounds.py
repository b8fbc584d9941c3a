"""Meta-data is parsed within the same bounds as user-data, in both stages.

Early (standard library only) the small parser refuses what it does not know;
where PyYAML is importable the fallback is the bounded loader, never a plain
``yaml.safe_load``. Anything wrong is a problem on the seed, and the seed's
other payloads still come through.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.reliability.bounded import run_bounded

ALIAS_BOMB = "".join(
    [f"a: &a [{','.join(['lol'] * 9)}]\n"]
    + [f"{n}: &{n} [{','.join([f'*{b}'] * 9)}]\n" for b, n in itertools.pairwise("abcdefghi")]
)
DEEP_JSON = '{"instance-id": "i-1", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"

DISCOVER_SETUP = """
from pathlib import Path
from bootseed.early.discover import discover
from tests.early.seedhelpers import isolated_config, write_seed_dir

def seed_with_meta_data(tmp: str, meta: str) -> dict:
    tmp_path = Path(tmp)
    cfg = isolated_config(tmp_path)
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                   {"meta-data": meta, "user-data": "#cloud-config\\nhostname: h\\n"})
    seed = discover(cfg)
    return {"source": seed.source, "user_data": seed.payloads.get("user-data", b"").decode(),
            "problems": [[p.where, p.message] for p in seed.problems]}
"""


def _discover(tmp_path: Path, meta: str) -> dict:
    outcome = run_bounded(
        DISCOVER_SETUP + f"\nMETA = {meta!r}\nTMP = {str(tmp_path)!r}\n",
        "RESULT = seed_with_meta_data(TMP, META)",
    )
    assert outcome.seconds < 10 and outcome.rss_growth_mb < 300, outcome
    assert isinstance(outcome.result, dict)
    return outcome.result


def test_alias_bomb_meta_data_is_refused_and_user_data_still_comes_through(
    tmp_path: Path,
) -> None:
    assert len(ALIAS_BOMB) < 400
    result = _discover(tmp_path, ALIAS_BOMB)
    assert result["source"] == "nocloud"
    assert result["user_data"] == "#cloud-config\nhostname: h\n"
    assert [m for _, m in result["problems"] if "meta-data unusable" in m and "nodes" in m], result


def test_too_deep_json_meta_data_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = _discover(tmp_path, DEEP_JSON)
    assert result["source"] == "nocloud"
    assert result["user_data"] == "#cloud-config\nhostname: h\n"
    assert [m for _, m in result["problems"] if "nested too deeply" in m], result


def test_early_stage_without_pyyaml_refuses_what_its_parser_does_not_know() -> None:
    outcome = run_bounded(
        "import sys\nsys.modules['yaml'] = None  # as in the initramfs: no PyYAML\n"
        "from bootseed.early.sources.metadata import MetadataError, parse_meta_data\n",
        f"try:\n    parse_meta_data({ALIAS_BOMB.encode()!r})\n    RESULT = 'parsed'\n"
        "except MetadataError as exc:\n    RESULT = str(exc)\n",
    )
    assert "not supported" in str(outcome.result)
    assert outcome.seconds < 1
