"""Floor, overhead, time-to-SSH and given-host-key figures, the seed variants, the report."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import run_all
from bench.boot_vs_cloudinit import SEED, render
from bench.figures import (
    Spread,
    compare,
    comparison_ratio,
    floor_comparisons,
    overhead,
    render_comparisons,
    spread,
)
from bench.sshprobe import (
    KeyPair,
    SshProbe,
    parse_uptime,
    with_host_keys,
    with_probe_key,
)


def _side(configured: float | None, multi_user: float | None, ssh: float | None = None,
          wall: float | None = None, cpu: float | None = None) -> dict[str, Any]:
    return {"configured_uptime": configured, "multi_user_uptime": multi_user,
            "ssh_uptime": ssh, "ssh_host_seconds": None if ssh is None else ssh + 3.0,
            "wall_total": wall, "cpu_total": cpu, "problems": [], "console": "c",
            "unit_wall": {}, "unit_cpu": {}, "stages": {}, "slowest_modules": {}}


def _row(bs: dict[str, Any], ci: dict[str, Any], floors: tuple[float | None, float | None],
         ok: bool = True, hostkeys: tuple[dict[str, Any], dict[str, Any]] | None = None,
         ) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ok": ok, "bootseed": bs, "cloud_init": ci,
        "floor": {side: {"multi_user_uptime": value,
                         "problems": [] if value is not None else ["no report"]}
                  for side, value in zip(("bootseed", "cloud_init"), floors, strict=True)},
        "extra": {"bootseed": {"console": "c", "early_wall_ms": 400.0},
                  "cloud-init": {"console": "c"}},
    }
    if hostkeys is not None:
        row["hostkeys"] = {"ok": True, "bootseed": hostkeys[0], "cloud_init": hostkeys[1]}
    return row


def test_spread_and_overhead() -> None:
    assert spread([3.0, None, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0, 3)
    assert spread([None]) == Spread(None, None, None, 0)
    assert Spread(2.0, 1.0, 3.0, 3).text() == "2.00 (1.00-3.00, n=3)"
    assert Spread(2.0, 2.0, 2.0, 1).text() == "2.00 (n=1)"
    assert Spread(None, None, None, 0).text() == "-"
    assert overhead(110.0, 85.5) == 24.5
    assert overhead(None, 85.0) is None and overhead(110.0, None) is None
    cmp = compare("x", [(10.0, 40.0), (20.0, 40.0), (None, 30.0)])
    assert cmp.bootseed == Spread(15.0, 10.0, 20.0, 2)
    assert cmp.cloud_init.n == 3
    assert cmp.ratio == Spread(3.0, 2.0, 4.0, 2)  # pairs missing a side give no ratio


def test_floor_comparisons_per_pair_against_the_same_pairs_floor() -> None:
    rows = [
        _row(_side(90.0, 88.0, ssh=92.0), _side(130.0, 125.0, ssh=128.0), (80.0, 84.0),
             hostkeys=(_side(85.0, 84.0, wall=2.0, cpu=1.5), _side(120.0, 118.0, wall=30.0,
                                                                      cpu=20.0))),
        _row(_side(100.0, 95.0, ssh=99.0), _side(150.0, 140.0, ssh=145.0), (90.0, 92.0),
             hostkeys=(_side(85.0, 84.0, wall=3.0, cpu=2.0), _side(120.0, 118.0, wall=30.0,
                                                                      cpu=21.0))),
        # An invalid pair gives its floors, never its typical figures.
        _row(_side(10.0, 9.0, ssh=9.5), _side(500.0, 400.0, ssh=450.0), (70.0, 71.0),
             ok=False),
        # A floor boot that failed gives no overhead for that image.
        _row(_side(95.0, 90.0, ssh=93.0), _side(140.0, 130.0, ssh=135.0), (None, 88.0)),
    ]
    found = {c.figure: c for c in floor_comparisons(rows)}
    assert found["floor_multi_user"].bootseed == Spread(80.0, 70.0, 90.0, 3)
    assert found["floor_multi_user"].cloud_init.n == 4
    conf = found["configured_overhead"]
    assert conf.bootseed == Spread(10.0, 10.0, 10.0, 2)  # 90-80, 100-90
    assert conf.cloud_init == Spread(52.0, 46.0, 58.0, 3)  # 130-84, 150-92, 140-88
    assert conf.ratio == Spread(5.2, 4.6, 5.8, 2)
    assert found["multi_user_overhead"].bootseed == Spread(6.5, 5.0, 8.0, 2)
    assert found["ssh_uptime"].ratio == Spread(1.45, 1.39, 1.46, 3)  # 128/92, 145/99, 135/93
    assert found["ssh_uptime"].bootseed == Spread(93.0, 92.0, 99.0, 3)
    assert found["ssh_overhead"].bootseed == Spread(10.5, 9.0, 12.0, 2)
    assert found["ssh_host"].bootseed == Spread(96.0, 95.0, 102.0, 3)
    assert found["hostkeys_wall"].ratio == Spread(12.5, 10.0, 15.0, 2)
    assert found["hostkeys_cpu"].cloud_init == Spread(20.5, 20.0, 21.0, 2)
    doc = [asdict(c) for c in found.values()]
    assert comparison_ratio(doc, "configured_overhead") == 5.2
    assert comparison_ratio(doc, "no such figure") is None


def test_variants_not_run_leave_their_figures_out() -> None:
    rows = [_row(_side(90.0, 88.0), _side(130.0, 125.0), (80.0, 84.0))]
    figures = [c.figure for c in floor_comparisons(rows)]
    assert "configured_overhead" in figures
    assert "hostkeys_wall" not in figures and "ssh_uptime" not in figures


def test_render_comparisons_table() -> None:
    doc = [asdict(compare("configured_overhead", [(10.0, 50.0), (12.0, 48.0)]))]
    table = render_comparisons(doc)
    lines = table.splitlines()
    assert lines[0] == "| figure | bootseed | cloud-init | cloud-init / bootseed |"
    assert lines[2] == ("| configured overhead over the floor (s) | 11.00 (10.00-12.00, n=2) "
                        "| 49.00 (48.00-50.00, n=2) | 4.50 (4.00-5.00, n=2) |")


def test_probe_seed_replaces_alices_key_only_and_adds_host_keys(tmp_path: Path) -> None:
    text = (SEED / "user-data").read_text()
    probed = with_probe_key(text, "ssh-ed25519 AAAAprobe bench-probe")
    assert "alice@bench" not in probed and "bob@bench" in probed
    assert probed.count("ssh-ed25519 AAAAprobe bench-probe") == 1
    assert len(probed.splitlines()) == len(text.splitlines())
    with pytest.raises(ValueError):
        with_probe_key(probed, "ssh-ed25519 AAAAx y")
    private = tmp_path / "k"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"
                       "-----END OPENSSH PRIVATE KEY-----\n")
    given = with_host_keys(probed, {"ed25519": KeyPair(private, "ssh-ed25519 AAAAh root@b")})
    cfg = yaml.safe_load(given)
    assert cfg["ssh_keys"]["ed25519_public"] == "ssh-ed25519 AAAAh root@b"
    assert cfg["ssh_keys"]["ed25519_private"] == private.read_text()
    assert cfg["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAAprobe bench-probe"]


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client")
def test_probe_gives_up_on_a_closed_port_within_its_bound(tmp_path: Path) -> None:
    from bench.sshprobe import free_port

    probe = SshProbe(free_port(), tmp_path / "none", interval=0.05, connect_timeout=1,
                     deadline=1.0)
    probe.start()
    time.sleep(1.5)  # longer than the probe's own deadline: it has ended by itself
    result = probe.stop()
    assert result.guest_uptime is None and result.attempts >= 1 and result.last_error
    assert parse_uptime("123.45 67.8\n") == 123.45 and parse_uptime("") is None


def _data(rows: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    from bench.boot_vs_cloudinit import summarize
    from bench.figures import AgentRun, Pair

    pairs = [Pair(AgentRun("bootseed", configured_uptime=r["bootseed"]["configured_uptime"]),
                  AgentRun("cloud-init", configured_uptime=r["cloud_init"]["configured_uptime"]))
             for r in rows]
    summary = summarize(pairs)
    summary["comparisons"] = [asdict(c) for c in floor_comparisons(rows)]
    return {
        "started": "2026-12-01 02:00", "seconds": 10.0, "quick": quick,
        "machine": {"cpu": "x"}, "versions": {"bootseed": "git abc"},
        "boot": {"pairs": rows, "summary": summary},
        "userdata": {"error": "not run"}, "late": {"error": "not run"},
        "early": {"error": "not run"}, "initramfs": {"error": "not run"},
        "userdata16": {"process_s": 0.8, "tracemalloc_peak_x_input": 3.5},
        "discovery": {run_all.OFFCLOUD: {"median_ms": 200.0, "max_ms": 250.0}},
    }


def test_report_gives_each_issue_target_its_verdict() -> None:
    rows = [_row(_side(90.0, 88.0, ssh=92.0, wall=5.0), _side(130.0, 125.0, ssh=190.0,
                                                               wall=20.0), (80.0, 84.0),
                 hostkeys=(_side(85.0, 84.0, wall=2.0, cpu=1.5),
                           _side(120.0, 118.0, wall=30.0, cpu=20.0)))]
    text = run_all.report(_data(rows, quick=False))
    table = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}

    def verdict(start: str) -> str:
        return next(line for key, line in table.items() if key.startswith(start))

    assert "MISSED by 5.4x" in verdict("| bootseed's configured overhead")  # 46/10
    assert "met (2.07x >= 2x)" in verdict("| time to SSH")
    assert "met (15x >= 10x)" in verdict("| with host keys given")
    assert "met (400 ms <= 500 ms)" in verdict("| early stage fetch path")
    assert "met (0.8 s <= 1 s)" in verdict("| 16 MiB user-data <= 1 s")
    assert "MISSED by 0.5x" in verdict("| 16 MiB user-data <= 3x")
    assert "met (200 ms <= 1000 ms)" in verdict("| off-cloud verdict")
    assert "| configured overhead over the floor (s) | 10.00 (n=1) | 46.00 (n=1) |" in text
    assert "Smoke run" not in text
    assert "- **overhead**: MISSED" in text and "- **userdata_memory**: MISSED" in text


def test_quick_report_says_it_is_a_smoke_run_and_what_it_did_not_measure() -> None:
    rows = [_row(_side(90.0, 88.0, ssh=92.0), _side(130.0, 125.0, ssh=190.0), (80.0, 84.0))]
    text = run_all.report(_data(rows, quick=True))
    assert "**Smoke run (`--quick`)" in text
    assert "| with host keys given, agent wall >= 10x less than cloud-init's | median per-pair " \
           "ratio of agent unit wall time None | not measured |" in text
    assert "Against the floor" in render(_data(rows, quick=True)["boot"])
