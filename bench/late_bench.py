#!/usr/bin/env python3
"""Late-agent wall time on a typical first boot, and its import cost.

Applies a typical config (2 users with keys, 5 write_files, hostname, runcmd
writing a file) to a fresh temp target root with ``bootseed run --stage all``
as a subprocess (interpreter start included, as at boot), then a second boot
of the same instance; prints wall times, the slowest modules, and the import
time and module count of what ``bootseed run`` loads on the first and on a
second boot (``python -X importtime``, summed).
Target for later rounds: at least 10x less wall time than cloud-init.

Usage: .venv/bin/python bench/late_bench.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testsupport.chroot import make_shell_root  # noqa: E402
from testsupport.runenv import plant_seed  # noqa: E402
from testsupport.targetfs import make_target  # noqa: E402

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeBenchKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA a@bench"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeBenchKeyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB b@bench"

USER_DATA = f"""#cloud-config
hostname: bench-host
fqdn: bench-host.example.test
users:
  - default
  - name: alice
    groups: [adm]
    shell: /bin/sh
    ssh_authorized_keys: ["{KEY_A}"]
  - name: bob
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys: ["{KEY_B}"]
write_files:
""" + "".join(
    f"  - path: /etc/bench/file{i}.conf\n    content: |\n      setting{i} = value{i}\n"
    f"    permissions: '0644'\n"
    for i in range(5)
) + """runcmd:
  - echo ran > /tmp/runcmd-done
"""

def bootseed_exe() -> str:
    return str(Path(sys.executable).with_name("bootseed"))


def one_boot(root: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(
        [bootseed_exe(), "run", "--root", str(root), "--network-timeout", "0",
         "--console", str(root.parent / "console.txt")],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bootseed run failed: {proc.stderr.strip()}")
    status = json.loads((root / "run/bootseed/status.json").read_text())
    return wall, status


def import_time(root: Path) -> tuple[float, list[tuple[str, float]], int]:
    """Import time a real ``bootseed run`` pays (``-X importtime``, self times summed),
    the heaviest top-level packages by cumulative time, and how many modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", bootseed_exe(), "run", "--root", str(root),
         "--network-timeout", "0", "--console", str(root.parent / "console.txt")],
        capture_output=True, text=True, check=False,
    )
    total_us = 0
    count = 0
    top: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package"
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, raw_name = line.split(":", 1)[1].split("|")
        total_us += int(self_us)
        count += 1
        name = raw_name.strip()
        # Nesting shows as extra indentation; one space means imported at top level.
        if len(raw_name) - len(raw_name.lstrip()) == 1:
            top[name] = max(top.get(name, 0), int(cumulative))
    heavy = sorted(top.items(), key=lambda kv: kv[1], reverse=True)[:6]
    return total_us / 1e6, [(name, us / 1e6) for name, us in heavy], count


def interpreter_start() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    first: list[float] = []
    second: list[float] = []
    last_status: dict = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bootseed-bench-") as tmp:
            root = make_shell_root(make_target(Path(tmp) / "root").root).root
            plant_seed(root, USER_DATA)
            wall, status = one_boot(root)
            if status["state"] != "done":
                failed = [m for m in status["modules"] if m["status"] == "failed"]
                raise SystemExit(f"run ended {status['state']}: {failed or status['errors']}")
            if not (root / "tmp/runcmd-done").exists():
                raise SystemExit("runcmd did not run")
            first.append(wall)
            last_status = status
            wall2, _ = one_boot(root)
            second.append(wall2)
    with tempfile.TemporaryDirectory(prefix="bootseed-bench-") as tmp:
        root = make_shell_root(make_target(Path(tmp) / "root").root).root
        plant_seed(root, USER_DATA)
        imports, heavy, count = import_time(root)
        # The same instance again: what every later boot pays.
        imports2, heavy2, count2 = import_time(root)
    bare = interpreter_start()
    slowest = sorted(last_status["modules"], key=lambda m: m["duration"], reverse=True)[:5]
    result = {
        "first_boot_wall_s": round(statistics.median(first), 4),
        "second_boot_wall_s": round(statistics.median(second), 4),
        "runs": args.runs,
        "bare_interpreter_start_s": round(bare, 4),
        "import_time_s": round(imports, 4),
        "heaviest_imports_s": {name: round(sec, 4) for name, sec in heavy},
        "modules_imported": count,
        "second_boot_import_time_s": round(imports2, 4),
        "second_boot_heaviest_imports_s": {name: round(sec, 4) for name, sec in heavy2},
        "second_boot_modules_imported": count2,
        "stages_s": {k: v["duration"] for k, v in last_status["stages"].items()},
        "slowest_modules_s": {m["name"]: m["duration"] for m in slowest},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"late agent, typical config, median of {args.runs} (subprocess wall, interpreter "
          "start included):")
    print(f"  first boot (new instance): {result['first_boot_wall_s']:.3f} s")
    print(f"  second boot (same instance): {result['second_boot_wall_s']:.3f} s")
    print(f"  bare interpreter start: {result['bare_interpreter_start_s']:.3f} s")
    print(f"  import time of a first-boot run: {result['import_time_s']:.3f} s (heaviest: "
          + ", ".join(f"{k} {v:.3f} s" for k, v in result["heaviest_imports_s"].items()) + ")")
    print(f"  modules imported: first boot {result['modules_imported']}, second boot "
          f"{result['second_boot_modules_imported']} "
          f"({result['second_boot_import_time_s']:.3f} s import time)")
    print("  stages: " + ", ".join(f"{k} {v:.3f} s" for k, v in result["stages_s"].items()))
    print("  slowest modules: " + ", ".join(
        f"{k} {v:.3f} s" for k, v in result["slowest_modules_s"].items()))
    print("  target for later rounds: >= 10x less wall time than cloud-init on the same config")
    return 0


if __name__ == "__main__":
    sys.exit(main())
