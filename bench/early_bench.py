"""Print the early stage's own wall time, from seed.json, over several lab boots.

Two paths: no network (no seed on the command line, no EC2 DMI: the stage must not
touch the network) and fetch (NoCloud URL seed: DHCP, fetch, tear-down). Each boot's
figure is the stage's ``wall_ms`` (interpreter start to seed.json written) and its
steps. The lab runs QEMU with TCG (software CPU), which makes Python start-up many
times slower than on hardware; ``--native`` adds the same no-network run in a chroot
holding only the initramfs closure on this host's CPU, for comparison with the
150 ms target. Run as root:

    .venv/bin/python bench/early_bench.py [--boots N] [--image RAW] [--native] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bootseed.early import closure
from bootseed.image_builder.build import BuildOptions, build_image
from bootseed.image_builder.lab import BootLab, BootOptions

from testsupport.initramfstree import copy_with_libraries, stage_path_tree

SOURCE = Path(__file__).resolve().parent.parent
SEED_JSON = "/run/bootseed/seed.json"
TARGET_MS = 150.0


def one_boot(lab: BootLab, path: str) -> dict[str, Any]:
    opts = BootOptions(report_files=[SEED_JSON])
    if path == "fetch":
        opts.nocloud_dir = SOURCE / "examples" / "nocloud"
    result = lab.boot(opts)
    raw = result.report.file_bytes(SEED_JSON) if result.report else None
    if raw is None:
        return {"path": path, "error": "no seed.json in the guest report",
                "console": str(result.console_log)}
    doc = json.loads(raw)
    action = next(a for a in doc["actions"] if a.get("action") == "early-stage")
    steps = {t["name"]: t["duration_ms"] for t in doc["timings"]
             if t["name"].startswith("early.") and not t["name"].startswith("early.rootswitch")}
    return {"path": path, "source": doc["source"], "wall_ms": action["wall_ms"],
            "steps": steps, "network": action["network"] is not None}


def native_runs(count: int) -> list[float]:
    """The no-network path in a chroot of the closure, in a fresh network namespace:
    the stage's own wall_ms from seed.json (10 ms clock ticks)."""
    work = Path(tempfile.mkdtemp(prefix="bootseed-early-bench-"))
    ns = f"bsbench{int(time.time()) % 100000}"
    try:
        tree = stage_path_tree(work / "path")
        root = work / "root"
        root.mkdir()
        result = closure.compute({"pyroute2"}, [str(tree), *sys.path])
        for src, target in [(str(Path(sys.executable).resolve()), "/usr/bin/python3"),
                            *closure.install(result, root, optimize=2)]:
            copy_with_libraries(src, root, target)
        for name in ("proc", "sys", "run", "tmp", "dev"):
            (root / name).mkdir(exist_ok=True)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        script = ('mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/python3 -I -S -m '
                  'bootseed.early premount --cmdline quiet --out /run/bootseed '
                  '--dmi-dir /nonexistent --no-disc-scan')
        times = []
        for _ in range(count + 1):
            subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", script, str(root)],
                           check=True, capture_output=True)
            doc = json.loads((root / "run/bootseed/seed.json").read_text())
            action = next(a for a in doc["actions"] if a.get("action") == "early-stage")
            times.append(float(action["wall_ms"]))
        return times[1:]  # the first run warms the page cache
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def summary(values: list[float]) -> str:
    if not values:
        return "no data"
    return (f"median {statistics.median(values):7.1f} ms  min {min(values):7.1f}  "
            f"max {max(values):7.1f}  (n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3, help="boots per path (default 3)")
    parser.add_argument("--image", type=Path, help="a built lab image (default: build one)")
    parser.add_argument("--native", action="store_true",
                        help="also time the no-network path natively in a chroot")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.boots < 1:
        print("early_bench: --boots must be at least 1", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bootseed-early-bench-"))
    try:
        image = args.image
        if image is None:
            manifest = build_image(BuildOptions(out_dir=work / "image", checksums=False),
                                   quiet=True)
            raw = manifest.file("raw")
            assert raw is not None
            image = Path(raw.path)
        lab = BootLab(image, work / "boots")
        runs = [one_boot(lab, path) for path in ("no-network", "fetch")
                for _ in range(args.boots)]
        native = native_runs(5) if args.native else []
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps({"boots": runs, "native_no_network_ms": native,
                          "target_ms": TARGET_MS}, indent=2))
        return 0
    for path in ("no-network", "fetch"):
        mine = [r for r in runs if r["path"] == path]
        print(f"{path} path, lab boots (QEMU TCG):")
        for r in mine:
            if "error" in r:
                print(f"  error: {r['error']} ({r['console']})")
                continue
            steps = ", ".join(f"{k[6:]} {v:.0f}" for k, v in r["steps"].items())
            print(f"  wall {r['wall_ms']:7.1f} ms  source {r['source']:8}  steps: {steps}")
        print("  " + summary([r["wall_ms"] for r in mine if "wall_ms" in r]))
    if native:
        print("no-network path natively (chroot of the initramfs closure, this CPU):")
        print("  " + summary(native) + f"  target {TARGET_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
