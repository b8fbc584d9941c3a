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

    .venv/bin/python bench/run_all.py [--pairs 3] [--out DIR] [--results FILE]

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
from bench.figures import target_verdict  # noqa: E402

MIB = 1024 * 1024
TARGETS = {
    "late": 10.0,  # cloud-init agent wall / bootseed agent wall, at least
    "configured": 2.0,  # cloud-init configured uptime / bootseed's, at least
    "initramfs_mib": 5.0,  # added by the hook, at most
    "early_ms": 150.0,  # early no-network path, at most
}


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
    verdicts = {
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
        f"| late stage wall time, typical config: >= {TARGETS['late']:g}x less than "
        f"cloud-init | median ratio of agent unit wall time {late_ratio} | {verdicts['late']} |",
        f"| boot-to-configured >= {TARGETS['configured']:g}x sooner than the cloud-init image "
        f"| median ratio of configured uptime {conf_ratio} | {verdicts['configured']} |",
        f"| initramfs growth <= {TARGETS['initramfs_mib']:g} MiB | {added_mib} MiB "
        f"| {verdicts['initramfs']} |",
        f"| early no-network path <= {TARGETS['early_ms']:g} ms | median {early_ms} ms "
        f"(native, 5 runs) | {verdicts['early']} |",
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
        "phone-home received).",
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
        if key in ("late", "configured") and boot_profiled:
            lines.append("  same boots, same profile as above.")
        elif key in ("late", "configured"):
            lines += _boot_profile(boot, late)
            boot_profiled = True
        elif key == "initramfs":
            lines.append("  largest added files above.")
        elif key == "early":
            lines.append("  run `.venv/bin/python bench/early_bench.py --native` with "
                         "`bootseed.early=importtime` for the import profile.")
    return "\n".join(lines) + "\n"


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
    args = parser.parse_args(argv)
    started = time.monotonic()
    data: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": machine(), "versions": versions()}

    def step(name: str) -> None:
        print(f"== {name}", file=sys.stderr, flush=True)

    step("user-data engines")
    try:
        data["userdata"] = userdata_vs_cloudinit.measure(5)
    except (SystemExit, Exception) as exc:
        data["userdata"] = {"error": str(exc)}
    step("late agent on a temp root")
    data["late"] = run_json(["bench/late_bench.py", "--runs", "3"], timeout=900)
    step("early stage, native no-network runs")
    data["early"] = early_native()
    step("initramfs size")
    data["initramfs"] = run_json(["bench/initramfs_size.py", "--list", "5"], timeout=1800)
    step(f"images and {args.pairs} boot pairs")
    bs_image, ci_image, image_versions = boot_vs_cloudinit.build_images(args.out / "images")
    data["boot"] = boot_vs_cloudinit.run_pairs(bs_image, ci_image, args.pairs,
                                               args.out / "boots", timeout=900)
    data["boot"]["versions"] = image_versions
    data["machine"]["load at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    summary = data["boot"]["summary"]
    ratios = (summary["wall_total"]["median_ratio"], summary["configured_uptime"]["median_ratio"])
    if any(r is None or r < t for r, t in zip(ratios, (TARGETS["late"], TARGETS["configured"]),
                                              strict=True)):
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
