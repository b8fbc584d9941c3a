#!/usr/bin/env python3
"""Seed discovery wall time: the off-cloud "no seed" verdict, and fetches.

Prints, over several runs (median and max):
- off-cloud, no seed: discovery with this machine's real block-device scan and
  DMI, an empty root, no network probing (target: <= 1 s; in practice ms);
- the same in a fresh interpreter (``bootseed seed fetch``, import cost included);
- an EC2 (IMDSv2) fetch from the mock on 127.0.0.1;
- a NoCloud URL fetch from a static server on 127.0.0.1;
- an EC2 fetch against a mock whose every answer stalls: time until "no seed"
  with the default request timeout and ``bootseed.timeout=5`` (bounded by the budget).

Usage: .venv/bin/python bench/seed_discovery.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bootseed.early.discover import DiscoveryConfig, discover
from bootseed.image_builder.mocks.imds import Fault, MockImds
from bootseed.image_builder.mocks.static import StaticServer

META = {"instance-id": "i-bench", "local-hostname": "bench", "ami-launch-index": "0",
        "placement": {"availability-zone": "eu-west-1a", "region": "eu-west-1"},
        "public-keys": {"k": "ssh-ed25519 AAAA bench"}}


def timed(runs: int, body: Callable[[], object]) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        body()
        samples.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results["off-cloud no seed (in process)"] = timed(
            args.runs, lambda: discover(DiscoveryConfig(cmdline="quiet", root=str(root))))
        script = Path(sys.executable).parent / "bootseed"
        results["off-cloud no seed (bootseed seed fetch)"] = timed(
            args.runs, lambda: subprocess.run(
                [str(script), "seed", "fetch", "--cmdline", "quiet", "--root", str(root)],
                capture_output=True, check=False))
        with MockImds(META, b"#cloud-config\n", mode="v2-required") as imds:
            cfg = DiscoveryConfig(cmdline="bootseed.ds=ec2", root=str(root), scan_discs=False,
                                  ec2_endpoints=[imds.url])
            results["ec2 IMDSv2 fetch (mock)"] = timed(args.runs, lambda: discover(cfg))
        (root / "www").mkdir()
        (root / "www/meta-data").write_text("instance-id: i-1\n")
        (root / "www/user-data").write_text("#cloud-config\n")
        with StaticServer(root / "www") as srv:
            url_cfg = DiscoveryConfig(cmdline=f"ds=nocloud;s={srv.url}/", root=str(root),
                                      scan_discs=False)
            results["nocloud URL fetch"] = timed(args.runs, lambda: discover(url_cfg))
        with MockImds(META, faults=[Fault("slow-headers", delay=60)]) as slow:
            slow_cfg = DiscoveryConfig(cmdline="bootseed.ds=ec2 bootseed.timeout=5",
                                       root=str(root), scan_discs=False,
                                       ec2_endpoints=[slow.url])
            results["ec2 stalled, bootseed.timeout=5"] = timed(1, lambda: discover(slow_cfg))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, figures in results.items():
            print(f"{name:<42} median {figures['median_ms']:9.2f} ms   "
                  f"max {figures['max_ms']:9.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
