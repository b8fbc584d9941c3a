#!/usr/bin/env python3
"""Run every side-by-side benchmark in one go and write ``bench/results/latest.md``.

One run, one machine: the boot pairs (``boot_vs_cloudinit.py``), the user-data
engines (``userdata_vs_cloudinit.py``), the late agent on a temp root
(``late_bench.py``), the early stage's no-network path natively
(``early_bench.native_runs``) plus its fetch path from this run's bootseed
boots, and the initramfs growth (``initramfs_size.py``). The report holds the
machine (CPU, cores, memory, kernel, load), the versions (bootseed's git
revision, cloud-init, QEMU), the figures, and each target met or missed by
how much, with a profile of the slowest part where one is missed. As root,
from the worktree:

    .venv/bin/python bench/run_all.py [--pairs 3] [--out DIR] [--results FILE] [--quick]

``--quick`` is a smoke run: one pair of the typical and the floor boots (no
host-key boots, no import profile), 1 run of the host-side benchmarks; its
figures are not the benchmark.

docs/performance.md quotes the file this writes; never type figures by hand.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench import boot_vs_cloudinit, userdata_vs_cloudinit  # noqa: E402
from bench.figures import comparison_ratio, target_verdict  # noqa: E402

MIB = 1024 * 1024
TARGETS = {
    "late": 10.0,  # cloud-init agent wall / bootseed agent wall, at least
    "configured": 2.0,  # cloud-init configured uptime / bootseed's, at least
    "initramfs_mib": 5.0,  # added by the hook, at most
    "early_ms": 150.0,  # early no-network path, at most
    "overhead": 10.0,  # cloud-init's configured overhead over its floor / bootseed's, at least
    "ssh": 2.0,  # cloud-init's time to SSH / bootseed's, at least
    "hostkeys_late": 10.0,  # with host keys given: cloud-init agent wall / bootseed's, at least
    "fetch_ms": 500.0,  # early stage fetch path in the guest under TCG, at most
    "userdata_s": 1.0,  # 16 MiB user-data through the engine, at most
    "userdata_x": 3.0,  # its peak memory over its size, at most
    "offcloud_ms": 1000.0,  # off-cloud "no seed" verdict, fresh interpreter, at most
}
OFFCLOUD = "off-cloud no seed (bootseed seed fetch)"


def _out(argv: list[str], **kwargs: Any) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=kwargs.pop("timeout", 60), **kwargs).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> dict[str, str]:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": mem,
            "kernel": platform.release(), "os": _out(["cat", "/etc/debian_version"]),
            "load at start": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def versions() -> dict[str, str]:
    rev = _out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _out(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "bootseed": f"git {rev}" + (" (with uncommitted changes)" if dirty else ""),
        "qemu": _out(["qemu-system-x86_64", "--version"]).splitlines()[0:1][0]
        if _out(["qemu-system-x86_64", "--version"]) else "?",
        "python (host)": platform.python_version(),
    }


def run_json(argv: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, *argv, "--json"], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip() or proc.stdout.strip())[-1500:]}
    return dict(json.loads(proc.stdout))


def early_native() -> dict[str, Any]:
    from bench.early_bench import native_runs

    try:
        runs = native_runs(5)
    except Exception as exc:  # a figure missing is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"runs_ms": runs}


def _median(values: list[float]) -> float | None:
    import statistics

    return round(statistics.median(values), 1) if values else None


def report(data: dict[str, Any]) -> str:
    boot = data["boot"]
    summary = boot["summary"]
    late_ratio = summary["wall_total"]["median_ratio"]
    conf_ratio = summary["configured_uptime"]["median_ratio"]
    initramfs = data["initramfs"]
    added_mib = round(initramfs["added_bytes"] / MIB, 2) if "added_bytes" in initramfs else None
    early = data["early"]
    early_ms = _median(early.get("runs_ms") or [])
    comparisons = summary.get("comparisons") or []
    overhead_ratio = comparison_ratio(comparisons, "configured_overhead")
    ssh_ratio = comparison_ratio(comparisons, "ssh_uptime")
    hostkeys_ratio = comparison_ratio(comparisons, "hostkeys_wall")
    fetch_ms = _median([f for f in (p["extra"]["bootseed"].get("early_wall_ms")
                                    for p in boot["pairs"]) if f is not None])
    big = data.get("userdata16") or {}
    big_s, big_x = big.get("process_s"), big.get("tracemalloc_peak_x_input")
    offcloud_ms = ((data.get("discovery") or {}).get(OFFCLOUD) or {}).get("median_ms")
    verdicts = {
        "overhead": target_verdict(overhead_ratio, TARGETS["overhead"], True, "x"),
        "ssh": target_verdict(ssh_ratio, TARGETS["ssh"], True, "x"),
        "hostkeys_late": target_verdict(hostkeys_ratio, TARGETS["hostkeys_late"], True, "x"),
        "fetch": target_verdict(fetch_ms, TARGETS["fetch_ms"], False, " ms"),
        "userdata_time": target_verdict(big_s, TARGETS["userdata_s"], False, " s"),
        "userdata_memory": target_verdict(big_x, TARGETS["userdata_x"], False, "x"),
        "offcloud": target_verdict(offcloud_ms, TARGETS["offcloud_ms"], False, " ms"),
        "late": target_verdict(late_ratio, TARGETS["late"], True, "x"),
        "configured": target_verdict(conf_ratio, TARGETS["configured"], True, "x"),
        "initramfs": target_verdict(added_mib, TARGETS["initramfs_mib"], False, " MiB"),
        "early": target_verdict(early_ms, TARGETS["early_ms"], False, " ms"),
    }
    lines = [
        "# bootseed next to cloud-init: benchmark results",
        "",
        f"Written by `bench/run_all.py` on {data['started']} (UTC) in {data['seconds']:.0f} s. "
        "Every figure below comes from this one run on this one machine; re-run it rather "
        "than compare with figures from another day.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in data["machine"].items()],
        "",
        "## Versions",
        "",
        *[f"- {k}: {v}" for k, v in data["versions"].items()],
        *[f"- {k} (images): {v}" for k, v in boot.get("versions", {}).items()],
        f"- cloud-init (user-data comparison): {data['userdata'].get('cloud_init_version', '?')}",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| bootseed's configured overhead over its floor <= 1/{TARGETS['overhead']:g} of "
        f"cloud-init's over its own | median per-pair ratio of the overheads {overhead_ratio} "
        f"| {verdicts['overhead']} |",
        f"| time to SSH >= {TARGETS['ssh']:g}x sooner than the cloud-init image | median "
        f"per-pair ratio of guest uptime at the first accepted login {ssh_ratio} "
        f"| {verdicts['ssh']} |",
        f"| with host keys given, agent wall >= {TARGETS['hostkeys_late']:g}x less than "
        f"cloud-init's | median per-pair ratio of agent unit wall time {hostkeys_ratio} "
        f"| {verdicts['hostkeys_late']} |",
        f"| early stage fetch path <= {TARGETS['fetch_ms']:g} ms of guest time under TCG "
        f"| median {fetch_ms} ms (seed.json wall_ms of this run's bootseed boots) "
        f"| {verdicts['fetch']} |",
        f"| 16 MiB user-data <= {TARGETS['userdata_s']:g} s | best of the runs {big_s} s "
        f"(`bench/userdata_bench.py`) | {verdicts['userdata_time']} |",
        f"| 16 MiB user-data <= {TARGETS['userdata_x']:g}x its size in memory | tracemalloc "
        f"peak {big_x}x the input | {verdicts['userdata_memory']} |",
        f"| off-cloud verdict <= {TARGETS['offcloud_ms']:g} ms | median {offcloud_ms} ms "
        f"(`bench/seed_discovery.py`, fresh interpreter) | {verdicts['offcloud']} |",
        f"| late stage wall time, typical config: >= {TARGETS['late']:g}x less than "
        f"cloud-init | median ratio of agent unit wall time {late_ratio} | {verdicts['late']} |",
        f"| boot-to-configured >= {TARGETS['configured']:g}x sooner than the cloud-init image "
        f"| median ratio of configured uptime {conf_ratio} | {verdicts['configured']} |",
        f"| initramfs growth <= {TARGETS['initramfs_mib']:g} MiB | {added_mib} MiB "
        f"| {verdicts['initramfs']} |",
        f"| early no-network path <= {TARGETS['early_ms']:g} ms | median {early_ms} ms "
        f"(native, 5 runs) | {verdicts['early']} |",
        "",
        *(["", "**Smoke run (`--quick`): one pair, no host-key boots; these figures are "
            "not the benchmark.**"] if data.get("quick") else []),
        "",
        "Targets are reported, not tested. QEMU runs with TCG (software CPU), 1 vCPU, "
        "1 GiB, for both images; the other engineers' boots may share the two host cores "
        "(load at start above), which slows both sides of a pair alike.",
        "",
        "## Boots: A/B pairs with the same NoCloud seed (`bench/typical`)",
        "",
        boot_vs_cloudinit.render(boot),
        "",
        "\"configured\" is the guest's uptime when the agent finished (bootseed's status "
        "`boot_finished_uptime`; cloud-init's `/var/lib/cloud/instance/boot-finished`). "
        "\"agent wall\" sums the run time of each agent's systemd units (bootseed.service, "
        "bootseed-final.service; cloud-init-local, cloud-init, cloud-config, cloud-final), "
        "interpreter start-up and imports included; \"agent CPU\" sums their CPUUsageNSec. "
        "A pair counts only if both agents reported success and the guest's probes show the "
        "config applied (users and keys, 5 files and their content, runcmd marker, hostname, "
        "phone-home received). The floor is the same image booted with its agent off "
        "(`bootseed=off`, `cloud-init=disabled`; same seed): uptime at multi-user; an "
        "overhead is a boot figure minus the same pair's floor of the same image. Time to "
        "SSH is the guest's uptime when sshd first accepted a login with the seed's user "
        "key, tried from the host every 0.5 s through a QEMU host-forwarded port "
        "(`bench/sshprobe.py`); the host wall time from QEMU's start is given beside it.",
        "",
    ]
    late = data["late"]
    lines += ["## Late agent on a temp root (bootseed only, host CPU, `bench/late_bench.py`)",
              ""]
    if "error" in late:
        lines.append(f"failed: {late['error']}")
    else:
        lines += [
            f"- first boot (new instance): {late['first_boot_wall_s']} s; second boot: "
            f"{late['second_boot_wall_s']} s (median of {late['runs']}, subprocess wall)",
            f"- bare interpreter start: {late['bare_interpreter_start_s']} s; imports of a "
            f"first-boot run: {late['import_time_s']} s",
            "- heaviest imports (`-X importtime`, cumulative): " + ", ".join(
                f"{k} {v} s" for k, v in late["heaviest_imports_s"].items()),
        ]
    lines += ["", "## User-data: bootseed's engine and cloud-init's processor, same inputs",
              ""]
    lines.append(userdata_vs_cloudinit.render(data["userdata"]) if "rows" in data["userdata"]
                 else f"failed: {data['userdata'].get('error')}")
    lines += ["",
              "cloud-init's time includes its part handlers writing scripts and the merged "
              "cloud-config into a temp instance dir (as at boot); bootseed's engine only "
              "unpacks and merges (its modules write later). A boothook differs in form only: "
              "bootseed's part holds the script without its `#cloud-boothook` line, cloud-init "
              "hands its handler the whole payload and strips the line when writing it.",
              "", "## Early stage (inside the initramfs)", ""]
    if "error" in early:
        lines.append(f"native no-network runs failed: {early['error']}")
    else:
        lines.append(f"- no-network path natively (chroot of the initramfs closure, this CPU, "
                     f"`early_bench.native_runs`): {', '.join(str(r) for r in early['runs_ms'])}"
                     f" ms; median {early_ms} ms")
    fetch = [p["extra"]["bootseed"].get("early_wall_ms") for p in boot["pairs"]]
    fetch = [f for f in fetch if f is not None]
    if fetch:
        lines.append("- fetch path in this run's bootseed boots (NoCloud URL, QEMU TCG, "
                     f"seed.json wall_ms): {', '.join(str(f) for f in fetch)}")
    lines += ["", "## initramfs size (`bench/initramfs_size.py`)", ""]
    if "error" in initramfs:
        lines.append(f"failed: {initramfs['error']}")
    else:
        lines += [
            f"- without the hook: {initramfs['without_bytes'] / MIB:.2f} MiB; with it: "
            f"{initramfs['with_bytes'] / MIB:.2f} MiB; added: {added_mib} MiB "
            f"(kernel {initramfs['kernel']})",
            "- largest added files: " + ", ".join(
                f"{f['path']} {f['bytes'] / 1024:.0f} KiB" for f in initramfs["largest_added"]),
        ]
    lines += ["", "## Where targets are missed: profiles of the slowest part", ""]
    missed = [k for k, v in verdicts.items() if v.startswith("MISSED")]
    if not missed:
        lines.append("No target missed in this run.")
    boot_profiled = False
    for key in missed:
        lines.append(f"- **{key}**: {verdicts[key]}")
        if key in BOOT_TARGETS and boot_profiled:
            lines.append("  same boots, same profile as above.")
        elif key in BOOT_TARGETS:
            lines += _boot_profile(boot, late)
            boot_profiled = True
        elif key == "initramfs":
            lines.append("  largest added files above.")
        elif key in ("userdata_time", "userdata_memory", "offcloud"):
            lines.append("  host-side figure: re-run its script (named in the table) under "
                         "`-X importtime` or cProfile.")
        elif key == "fetch":
            lines.append("  the early stage's records (seed.json timings) of these boots; "
                         "`bench/early_bench.py` breaks the fetch path down.")
        elif key == "early":
            lines.append("  run `.venv/bin/python bench/early_bench.py --native` with "
                         "`bootseed.early=importtime` for the import profile.")
    return "\n".join(lines) + "\n"


BOOT_TARGETS = ("overhead", "ssh", "hostkeys_late", "late", "configured")


def _boot_profile(boot: dict[str, Any], late: dict[str, Any]) -> list[str]:
    out: list[str] = []
    valid = [p for p in boot["pairs"] if p["ok"]] or boot["pairs"]
    if not valid:
        return ["  no boot to profile"]
    pair = valid[-1]
    bs, ci = pair["bootseed"], pair["cloud_init"]
    out.append(f"  bootseed units (last valid pair): wall {bs['unit_wall']}, CPU {bs['unit_cpu']}; "
               f"its own stages {bs['stages']}; slowest modules {bs.get('slowest_modules')}")
    out.append(f"  cloud-init units: wall {ci['unit_wall']}, CPU {ci['unit_cpu']}; its own "
               f"stages {ci['stages']}")
    for name, side in (("bootseed", bs), ("cloud-init", ci)):
        wall = sum(side["unit_wall"].values())
        own = sum(side["stages"].values())
        if wall and own:
            out.append(f"  {name}: its units' processes ran {wall:.2f} s, its own stage "
                       f"records cover {own:.2f} s; the other {wall - own:.2f} s is outside "
                       "the stages: interpreter start-up and imports (TCG makes them many "
                       "times slower than on hardware), waits for the network and locks")
    profile = boot.get("importtime") or {}
    for n, block in enumerate(profile.get("profiles") or [], 1):
        out.append(f"  in-guest `-X importtime` (one extra bootseed boot, not in the figures; "
                   f"{profile['console']}), interpreter {n} of {len(profile['profiles'])} in "
                   "start order (bootseed.service's run, then bootseed-final.service's): "
                   f"imports {block['total_s']} s self time in all (importtime's own overhead "
                   "included); heaviest top-level (cumulative): " + ", ".join(
                       f"{k} {v} s" for k, v in block["top"].items()))
    if "heaviest_imports_s" in late:
        out.append("  bootseed's import cost on the host (`-X importtime`, late_bench): "
                   f"{late['import_time_s']} s of a {late['first_boot_wall_s']} s first boot; "
                   "heaviest: " + ", ".join(f"{k} {v} s"
                                            for k, v in late["heaviest_imports_s"].items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/bootseed-bench"),
                        help="images, boots and the raw JSON (default /var/tmp/bootseed-bench)")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "latest.md")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 pair, typical and floor boots only")
    args = parser.parse_args(argv)
    pairs = 1 if args.quick else args.pairs
    host_runs = 1 if args.quick else 3
    started = time.monotonic()
    data: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": machine(), "versions": versions(), "quick": args.quick}

    def step(name: str) -> None:
        print(f"== {name}", file=sys.stderr, flush=True)

    step("user-data engines")
    try:
        data["userdata"] = userdata_vs_cloudinit.measure(1 if args.quick else 5)
    except (SystemExit, Exception) as exc:
        data["userdata"] = {"error": str(exc)}
    step("late agent on a temp root")
    data["late"] = run_json(["bench/late_bench.py", "--runs", str(host_runs)], timeout=900)
    step("16 MiB user-data")
    data["userdata16"] = run_json(["bench/userdata_bench.py", "--runs", str(host_runs)],
                                  timeout=900)
    step("seed discovery: off-cloud verdict")
    data["discovery"] = run_json(["bench/seed_discovery.py", "--runs", str(host_runs)],
                                 timeout=900)
    step("early stage, native no-network runs")
    data["early"] = early_native()
    step("initramfs size")
    data["initramfs"] = run_json(["bench/initramfs_size.py", "--list", "5"], timeout=1800)
    variants = boot_vs_cloudinit.QUICK_VARIANTS if args.quick else boot_vs_cloudinit.VARIANTS
    step(f"images and {pairs} boot pair(s): {', '.join(variants)}")
    bs_image, ci_image, image_versions = boot_vs_cloudinit.build_images(args.out / "images")
    data["boot"] = boot_vs_cloudinit.run_pairs(bs_image, ci_image, pairs,
                                               args.out / "boots", timeout=900,
                                               variants=variants)
    data["boot"]["versions"] = image_versions
    data["machine"]["load at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    summary = data["boot"]["summary"]
    ratios = (summary["wall_total"]["median_ratio"], summary["configured_uptime"]["median_ratio"])
    if not args.quick and any(r is None or r < t for r, t in zip(
            ratios, (TARGETS["late"], TARGETS["configured"]), strict=True)):
        step("a boot target is missed: one more bootseed boot with -X importtime")
        data["boot"]["importtime"] = boot_vs_cloudinit.profile_boot(
            bs_image, args.out / "boots" / "profile", timeout=900)
    data["seconds"] = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    text = report(data)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text)
    print(text)
    print(f"written: {args.results} (raw figures: {args.out / 'latest.json'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
