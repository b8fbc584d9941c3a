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

* **time to SSH**: the guest's uptime when its sshd first accepted a login with
  the seed's user key, probed from the host through a forwarded port
  (``bench/sshprobe.py``; the seed's copy carries a key pair made for the run);

and, in the same pair, two more boots of each image (``VARIANTS``):

* **floor**: the image with its agent off (``bootseed=off``,
  ``cloud-init=disabled``): uptime at multi-user, from which every boot figure
  is also given as overhead over its own image's floor;
* **hostkeys**: the typical seed plus SSH host keys in ``ssh_keys``, so neither
  agent generates any: agent wall and CPU.

A boot counts only if its agent reported success and the config is in the
guest (users with their keys, the files with their content, the runcmd
marker, hostname, a phone-home request at the sink). Prints per-pair
figures, the median of each and the median of the per-pair ratios, and each
floor/SSH/host-key figure as median (lowest-highest, n).

    .venv/bin/python bench/boot_vs_cloudinit.py [--pairs 3] [--out DIR] [--quick] \\
        [--bootseed-image RAW --cloud-init-image RAW] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.figures import (  # noqa: E402
    AgentRun,
    Expected,
    Pair,
    agent_run,
    floor_comparisons,
    importtime_profiles,
    median,
    pair_ratios,
    ratio,
    render_comparisons,
)
from bench.sshprobe import (  # noqa: E402
    KeyPair,
    SshProbe,
    free_port,
    make_host_keys,
    make_key,
    seed_variant,
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
VARIANTS = ("typical", "floor", "hostkeys")
QUICK_VARIANTS = ("typical", "floor")
# The kernel command line word that keeps each image's agent out of the boot.
AGENT_OFF = {"bootseed": "bootseed=off", "cloud-init": "cloud-init=disabled"}
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


@dataclass(frozen=True)
class Seeds:
    """This run's copies of ``bench/typical``: with the SSH probe's key, and with host keys."""

    typical: Path
    hostkeys: Path
    probe: KeyPair


def prepare_seeds(out: Path) -> Seeds:
    probe = make_key(out / "keys" / "probe_ed25519")
    host_keys = make_host_keys(out / "keys" / "host")
    return Seeds(typical=seed_variant(SEED, out / "typical", probe),
                 hostkeys=seed_variant(SEED, out / "hostkeys", probe, host_keys), probe=probe)


def _qemu_started(console_log: Path) -> float | None:
    """Host wall clock when QEMU was started: the lab writes its argv just before."""
    try:
        return (console_log.parent / "qemu.argv.json").stat().st_mtime
    except OSError:
        return None


def boot_once(image: Path, agent: str, workdir: Path, timeout: float, seed: Path = SEED,
              probe_key: Path | None = None) -> tuple[AgentRun, dict[str, Any]]:
    from bootseed.image_builder.cloudinit_image import NOCLOUD_CMDLINE
    from bootseed.image_builder.lab import BootLab, BootOptions

    lab = BootLab(image, workdir)
    files = sorted(EXPECTED.files) + ([SEED_JSON] if agent == "bootseed" else [])
    opts = BootOptions(nocloud_dir=seed, report_files=files, timeout=timeout,
                       status_timeout=int(timeout * 0.8))
    if agent == "cloud-init":
        opts.nocloud_cmdline = NOCLOUD_CMDLINE
    probe = None
    if probe_key is not None:
        opts.ssh_forward_port = free_port()
        probe = SshProbe(opts.ssh_forward_port, probe_key, deadline=timeout)
        probe.start()
    try:
        result = lab.boot(opts)
    finally:
        probed = probe.stop() if probe is not None else None
    extra: dict[str, Any] = {"console": str(result.console_log),
                             "wall_seconds": round(result.seconds, 1)}
    if probed is not None:
        extra["ssh_attempts"] = probed.attempts
        extra["ssh_last_error"] = probed.last_error
    if result.report is None:
        run = AgentRun(agent=agent, problems=result.problems() or ["no report"])
        return run, extra
    run = agent_run(result.report.raw, EXPECTED,
                    [r.path for r in result.sink_requests if r.method == "POST"])
    if probed is not None:
        run.ssh_uptime = probed.guest_uptime
        started = _qemu_started(result.console_log)
        if probed.host_seconds is not None and started is not None:
            run.ssh_host_seconds = round(probed.host_seconds - started, 3)
        if probed.guest_uptime is None:
            run.problems.append(f"sshd never accepted the probe's login "
                                f"({probed.attempts} attempts; last: {probed.last_error})")
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


def floor_once(image: Path, agent: str, workdir: Path, timeout: float,
               seed: Path = SEED) -> dict[str, Any]:
    """One boot of ``image`` with its agent off: uptime at multi-user, and problems.

    The same seed is given (the boot differs only by the agent being off); the
    report waits for no agent (bootseed's generator verdict is "disabled"; for
    cloud-init it waits one second for a boot-finished that never comes)."""
    from bootseed.image_builder.cloudinit_image import NOCLOUD_CMDLINE
    from bootseed.image_builder.lab import BootLab, BootOptions

    opts = BootOptions(nocloud_dir=seed, timeout=timeout, status_timeout=1,
                       kernel_args=[AGENT_OFF[agent]])
    if agent == "cloud-init":
        opts.nocloud_cmdline = NOCLOUD_CMDLINE
    result = BootLab(image, workdir).boot(opts)
    problems: list[str] = []
    uptime = None
    if result.report is None:
        problems += result.problems() or ["no report"]
    else:
        raw = result.report.raw
        uptime = raw.get("multi_user_reached")
        if not isinstance(uptime, (int, float)):
            problems.append("the guest reported no multi-user time")
            uptime = None
        units = raw.get("agent_units") or {}
        ran = [u for u, props in units.items() if isinstance(props, dict)
               and str(props.get("ExecMainStartTimestampMonotonic") or "0") not in ("0", "")]
        if ran:
            problems.append(f"the agent was to be off but ran: {', '.join(sorted(ran))}")
    return {"multi_user_uptime": uptime, "problems": problems,
            "console": str(result.console_log), "wall_seconds": round(result.seconds, 1)}


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
    for n, pair in enumerate(data["pairs"], 1):
        for variant in ("floor", "hostkeys"):
            block = pair.get(variant) or {}
            for side in ("bootseed", "cloud_init"):
                entry = block.get(side) or {}
                for problem in entry.get("problems") or []:
                    lines.append(f"- pair {n} {variant} {side}: {problem} "
                                 f"(console: {entry.get('console', '?')})")
    comparisons = summary.get("comparisons") or []
    if comparisons:
        lines += ["", "Against the floor, time to SSH, host keys given (median "
                  "(lowest-highest, n) over the pairs; ratio = cloud-init / bootseed per pair):",
                  "", render_comparisons(comparisons)]
    return "\n".join(lines)


def _row(run: AgentRun, extra: dict[str, Any]) -> dict[str, Any]:
    return {**asdict(run), "wall_total": run.wall_total, "cpu_total": run.cpu_total,
            "console": extra.get("console")}


def run_pairs(bootseed_image: Path, cloud_image: Path, pairs: int, workdir: Path,
              timeout: float, variants: tuple[str, ...] = VARIANTS,
              seeds: Seeds | None = None) -> dict[str, Any]:
    """``pairs`` rounds; each boots bootseed then cloud-init for every variant
    (typical with the SSH probe, floor, hostkeys), so load drifts hit both alike."""
    seeds = seeds or prepare_seeds(workdir / "seeds")
    images = {"bootseed": bootseed_image, "cloud-init": cloud_image}
    results: list[Pair] = []
    rows: list[dict[str, Any]] = []

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    for n in range(pairs):
        row: dict[str, Any] = {}
        runs: dict[str, AgentRun] = {}
        extras: dict[str, dict[str, Any]] = {}
        for agent, image in images.items():
            say(f"pair {n + 1}/{pairs}: booting {agent} (typical seed, SSH probe) ...")
            runs[agent], extras[agent] = boot_once(image, agent, workdir / agent, timeout,
                                                   seeds.typical, seeds.probe.private)
        bs, ci = runs["bootseed"], runs["cloud-init"]
        pair = Pair(bs, ci)
        results.append(pair)
        say(f"pair {n + 1}: configured at {bs.configured_uptime} s (bootseed) vs "
            f"{ci.configured_uptime} s (cloud-init); SSH at {bs.ssh_uptime} s vs "
            f"{ci.ssh_uptime} s; valid: {pair.ok}")
        row.update({"ok": pair.ok, "bootseed": _row(bs, extras["bootseed"]),
                    "cloud_init": _row(ci, extras["cloud-init"]),
                    "extra": {"bootseed": extras["bootseed"],
                              "cloud-init": extras["cloud-init"]}})
        if "floor" in variants:
            row["floor"] = {}
            for agent, image in images.items():
                say(f"pair {n + 1}/{pairs}: booting {agent} with {AGENT_OFF[agent]} (floor) ...")
                row["floor"][agent.replace("-", "_")] = floor_once(
                    image, agent, workdir / f"{agent}-floor", timeout, seeds.typical)
            say(f"pair {n + 1}: floor at {row['floor']['bootseed']['multi_user_uptime']} s "
                f"(bootseed) vs {row['floor']['cloud_init']['multi_user_uptime']} s")
        if "hostkeys" in variants:
            given: dict[str, AgentRun] = {}
            row["hostkeys"] = {}
            for agent, image in images.items():
                say(f"pair {n + 1}/{pairs}: booting {agent} with host keys in the seed ...")
                given[agent], extra = boot_once(image, agent, workdir / f"{agent}-hostkeys",
                                                timeout, seeds.hostkeys)
                row["hostkeys"][agent.replace("-", "_")] = _row(given[agent], extra)
            row["hostkeys"]["ok"] = Pair(given["bootseed"], given["cloud-init"]).ok
        rows.append(row)
    summary = summarize(results)
    summary["comparisons"] = [asdict(c) for c in floor_comparisons(rows)]
    return {"pairs": rows, "summary": summary, "variants": list(variants)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs (default 3)")
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/bootseed-bench"),
                        help="images and boot directories (default /var/tmp/bootseed-bench)")
    parser.add_argument("--bootseed-image", type=Path, help="use this image, do not build")
    parser.add_argument("--cloud-init-image", type=Path, help="use this image, do not build")
    parser.add_argument("--timeout", type=float, default=900, help="per boot (default 900 s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 pair, typical and floor only (no host-key boots)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    variants = QUICK_VARIANTS if args.quick else VARIANTS
    pairs = 1 if args.quick else args.pairs
    versions: dict[str, str] = {}
    if args.bootseed_image and args.cloud_init_image:
        bs_image, ci_image = args.bootseed_image, args.cloud_init_image
    else:
        bs_image, ci_image, versions = build_images(args.out / "images")
    data = run_pairs(bs_image, ci_image, pairs, args.out / "boots", args.timeout, variants)
    data["versions"] = versions
    print(json.dumps(data, indent=2, default=str) if args.json else render(data))
    return 0 if data["summary"]["valid_pairs"] else 1


if __name__ == "__main__":
    sys.exit(main())
