#!/usr/bin/env python3
"""Boot the bootseed image and the same image with Debian's cloud-init, alternately.

Both images come from ``bootseed-image build`` (``--agent cloud-init`` for the
second: same base tree, kernel and packages, cloud-init instead of bootseed).
Each pair boots bootseed then cloud-init (A B A B ...) in the boot lab under
the same QEMU settings with the same NoCloud URL seed, ``bench/typical``
(2 users with keys, 5 write_files, hostname, runcmd, phone-home). From each
guest's report it takes:

* **configured**: guest uptime when the agent finished (bootseed's status
  ``boot_finished_uptime``; cloud-init's ``boot-finished``, written by its
  final_message module);
* **agent wall**: the agent's systemd units' main-process run times, summed
  (bootseed.service + bootseed-final.service; cloud-init-local, cloud-init,
  cloud-config, cloud-final), the same yardstick for both;
* **agent CPU**: the same units' ``CPUUsageNSec``, summed, and per unit;
* the agent's own stage times (bootseed's status, cloud-init's status.json).

A boot counts only if its agent reported success and the config is in the
guest (users with their keys, the files with their content, the runcmd
marker, hostname, a phone-home request at the sink). Prints per-pair
figures, the median of each and the median of the per-pair ratios.

    .venv/bin/python bench/boot_vs_cloudinit.py [--pairs 3] [--out DIR] \\
        [--bootseed-image RAW --cloud-init-image RAW] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.figures import (  # noqa: E402
    AgentRun,
    Expected,
    Pair,
    agent_run,
    importtime_profiles,
    median,
    pair_ratios,
    ratio,
)

SEED = HERE / "typical"
SEED_JSON = "/run/bootseed/seed.json"
EXPECTED = Expected(
    hostname="bench-typical",
    users={"alice": 1, "bob": 1},
    files={
        "/etc/bench/app.conf": b"listen = 0.0.0.0:8080\nworkers = 2\n",
        "/etc/bench/secret.env": b"TOKEN=not-a-real-token\n",
        "/etc/bench/motd.txt": b"Configured by the bench seed.\n",
        "/etc/bench/b64.bin": b"hello from base64\n",
        "/etc/bench/appended.txt": b"appended line\n",
        "/var/tmp/bench-runcmd-marker": b"runcmd-ran\n",
    },
    phone_home_prefix="/phone-home/iid-bench-typical-0001",
)
FIGURES = (("configured_uptime", "configured (guest uptime, s)"),
           ("wall_total", "agent wall (units, s)"),
           ("cpu_total", "agent CPU (units, s)"))


def build_images(out: Path) -> tuple[Path, Path, dict[str, str]]:
    """Build both images from this tree; (bootseed raw, cloud-init raw, versions)."""
    from bootseed.image_builder.build import BuildOptions, build_image

    bootseed = build_image(BuildOptions(out_dir=out, checksums=False), stream=sys.stderr)
    cloud = build_image(BuildOptions(out_dir=out, name="cloudinit-bookworm-amd64",
                                     checksums=False, agent="cloud-init"), stream=sys.stderr)
    bs_file, ci_file = bootseed.file("raw"), cloud.file("raw")
    assert bs_file is not None and ci_file is not None
    versions = {"cloud-init": cloud.packages.get("cloud-init", "?"),
                "kernel": bootseed.kernel_version,
                "same kernel": str(bootseed.kernel_version == cloud.kernel_version)}
    return Path(bs_file.path), Path(ci_file.path), versions


def boot_once(image: Path, agent: str, workdir: Path, timeout: float) -> tuple[AgentRun,
                                                                              dict[str, Any]]:
    from bootseed.image_builder.cloudinit_image import NOCLOUD_CMDLINE
    from bootseed.image_builder.lab import BootLab, BootOptions

    lab = BootLab(image, workdir)
    files = sorted(EXPECTED.files) + ([SEED_JSON] if agent == "bootseed" else [])
    opts = BootOptions(nocloud_dir=SEED, report_files=files, timeout=timeout,
                       status_timeout=int(timeout * 0.8))
    if agent == "cloud-init":
        opts.nocloud_cmdline = NOCLOUD_CMDLINE
    result = lab.boot(opts)
    extra: dict[str, Any] = {"console": str(result.console_log),
                             "wall_seconds": round(result.seconds, 1)}
    if result.report is None:
        run = AgentRun(agent=agent, problems=result.problems() or ["no report"])
        return run, extra
    run = agent_run(result.report.raw, EXPECTED,
                    [r.path for r in result.sink_requests if r.method == "POST"])
    if run.agent != agent:
        run.problems.append(f"the {agent} image reported agent {run.agent!r}")
    if agent == "bootseed":
        seed = result.report.file_bytes(SEED_JSON)
        if seed is not None:
            doc = json.loads(seed)
            action = next((a for a in doc.get("actions") or []
                           if a.get("action") == "early-stage"), None)
            if action is not None:
                extra["early_wall_ms"] = action.get("wall_ms")
    return run, extra


def profile_boot(image: Path, workdir: Path, timeout: float) -> dict[str, Any]:
    """One more bootseed boot (not counted) with ``-X importtime`` in every service.

    ``systemd.setenv=PYTHONPROFILEIMPORTTIME=1`` reaches every service;
    bootseed's units send stderr to the console as well, so each of its
    interpreters' import timings land in ``console.log``, one block per
    process in start order (bootseed.service's config run first, then
    bootseed-final.service's).
    """
    from bootseed.image_builder.lab import BootLab, BootOptions

    lab = BootLab(image, workdir)
    result = lab.boot(BootOptions(nocloud_dir=SEED, timeout=timeout,
                                  status_timeout=int(timeout * 0.8),
                                  kernel_args=["systemd.setenv=PYTHONPROFILEIMPORTTIME=1"]))
    profiles = importtime_profiles(result.console_text())
    return {"console": str(result.console_log), "ok": result.ok,
            "profiles": [asdict(p) for p in profiles]}


def summarize(pairs: list[Pair]) -> dict[str, Any]:
    """Medians of each side and the median of the per-pair ratios, per figure."""
    summary: dict[str, Any] = {"pairs": len(pairs), "valid_pairs": sum(p.ok for p in pairs)}
    for attr, _label in FIGURES:
        valid = [p for p in pairs if p.ok]
        summary[attr] = {
            "bootseed_median": median([getattr(p.bootseed, attr) for p in valid]),
            "cloud_init_median": median([getattr(p.cloud_init, attr) for p in valid]),
            "median_ratio": median(pair_ratios(pairs, attr)),
        }
    cpu: dict[str, float | None] = {}
    for unit in sorted({u for p in pairs if p.ok for side in (p.bootseed, p.cloud_init)
                        for u in side.unit_cpu}):
        cpu[unit] = median([side.unit_cpu.get(unit) for p in pairs if p.ok
                            for side in (p.bootseed, p.cloud_init) if unit in side.unit_cpu])
    summary["unit_cpu_median"] = cpu
    stages: dict[str, dict[str, float | None]] = {"bootseed": {}, "cloud-init": {}}
    for p in pairs:
        if not p.ok:
            continue
        for side in (p.bootseed, p.cloud_init):
            for name in side.stages:
                stages[side.agent][name] = None
    for agent, names in stages.items():
        for name in names:
            stages[agent][name] = median([side.stages.get(name) for p in pairs if p.ok
                                          for side in (p.bootseed, p.cloud_init)
                                          if side.agent == agent])
    summary["stage_median"] = stages
    return summary


def render(data: dict[str, Any]) -> str:
    lines = ["| pair | bootseed configured s | cloud-init configured s | ratio | "
             "bootseed agent wall s | cloud-init agent wall s | ratio | "
             "bootseed CPU s | cloud-init CPU s | ratio | valid |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def num(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, (int, float)) else "-"

    for n, pair in enumerate(data["pairs"], 1):
        bs, ci = pair["bootseed"], pair["cloud_init"]
        cells = [str(n)]
        for attr, _label in FIGURES:
            cells += [num(bs[attr]), num(ci[attr]), num(ratio(ci[attr], bs[attr]))]
        cells.append("yes" if pair["ok"] else "NO")
        lines.append("| " + " | ".join(cells) + " |")
    summary = data["summary"]
    cells = ["**median**"]
    for attr, _label in FIGURES:
        s = summary[attr]
        cells += [num(s["bootseed_median"]), num(s["cloud_init_median"]),
                  f"**{num(s['median_ratio'])}**"]
    cells.append(f"{summary['valid_pairs']}/{summary['pairs']}")
    lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(ratio = cloud-init / bootseed per pair; the median row's ratio is the median "
                 "of the per-pair ratios)")
    lines.append("")
    lines.append("Agent CPU time per unit (systemd CPUUsageNSec, median over valid pairs): "
                 + ", ".join(f"{u} {num(v)} s" for u, v in summary["unit_cpu_median"].items()))
    for agent, stages in summary["stage_median"].items():
        if stages:
            lines.append(f"{agent} stages (its own records, median wall s): "
                         + ", ".join(f"{k} {num(v)}" for k, v in stages.items()))
    early = [p["extra"]["bootseed"].get("early_wall_ms") for p in data["pairs"]]
    early = [e for e in early if e is not None]
    if early:
        lines.append("bootseed early stage in these boots (fetch path, QEMU TCG, seed.json "
                     "wall_ms): " + ", ".join(str(e) for e in early))
    for n, pair in enumerate(data["pairs"], 1):
        for side in ("bootseed", "cloud_init"):
            for problem in pair[side]["problems"]:
                lines.append(f"- pair {n} {side}: {problem} "
                             f"(console: {pair['extra'][side.replace('_', '-')]['console']})")
    return "\n".join(lines)


def run_pairs(bootseed_image: Path, cloud_image: Path, pairs: int, workdir: Path,
              timeout: float) -> dict[str, Any]:
    results: list[Pair] = []
    rows: list[dict[str, Any]] = []
    for n in range(pairs):
        print(f"pair {n + 1}/{pairs}: booting bootseed ...", file=sys.stderr, flush=True)
        bs, bs_extra = boot_once(bootseed_image, "bootseed", workdir / "bootseed", timeout)
        print(f"pair {n + 1}/{pairs}: booting cloud-init ...", file=sys.stderr, flush=True)
        ci, ci_extra = boot_once(cloud_image, "cloud-init", workdir / "cloud-init", timeout)
        pair = Pair(bs, ci)
        results.append(pair)
        print(f"pair {n + 1}: configured at {bs.configured_uptime} s (bootseed) vs "
              f"{ci.configured_uptime} s (cloud-init); valid: {pair.ok}",
              file=sys.stderr, flush=True)
        rows.append({
            "ok": pair.ok,
            "bootseed": {**asdict(bs), "wall_total": bs.wall_total, "cpu_total": bs.cpu_total},
            "cloud_init": {**asdict(ci), "wall_total": ci.wall_total,
                           "cpu_total": ci.cpu_total},
            "extra": {"bootseed": bs_extra, "cloud-init": ci_extra},
        })
    return {"pairs": rows, "summary": summarize(results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs (default 3)")
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/bootseed-bench"),
                        help="images and boot directories (default /var/tmp/bootseed-bench)")
    parser.add_argument("--bootseed-image", type=Path, help="use this image, do not build")
    parser.add_argument("--cloud-init-image", type=Path, help="use this image, do not build")
    parser.add_argument("--timeout", type=float, default=900, help="per boot (default 900 s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    versions: dict[str, str] = {}
    if args.bootseed_image and args.cloud_init_image:
        bs_image, ci_image = args.bootseed_image, args.cloud_init_image
    else:
        bs_image, ci_image, versions = build_images(args.out / "images")
    data = run_pairs(bs_image, ci_image, args.pairs, args.out / "boots", args.timeout)
    data["versions"] = versions
    print(json.dumps(data, indent=2, default=str) if args.json else render(data))
    return 0 if data["summary"]["valid_pairs"] else 1


if __name__ == "__main__":
    sys.exit(main())
