"""Print how fast and how lean the user-data engine is on a 16 MiB multipart.

Builds a multipart/mixed user-data of about 16 MiB: several hundred parts,
plain and base64 scripts, cloud-config parts and gzip-compressed parts (some
base64, some binary), deterministic from a seed. Then, in a fresh child
process so nothing else is on the heap, it times ``engine.process`` (best of
``--runs``), times ``process`` + ``to_json`` (what ``bootseed userdata render
--json`` does), and measures peak memory twice: the tracemalloc peak of one
``process`` call, and the growth of ru_maxrss across it. Targets on the
reference machine: at most 1 s, and at most 3x the input size in memory.

    .venv/bin/python bench/userdata_bench.py [--size-mib 16] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

TIME_TARGET_S = 1.0
MEMORY_TARGET_X = 3.0


def build(size: int, seed: int = 7) -> tuple[bytes, int]:
    """The multipart user-data and its number of parts."""
    rng = random.Random(seed)
    boundary = "==bootseed-bench-boundary=="
    words = [f"word{n}" for n in range(2000)]
    out: list[bytes] = [
        f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n'.encode()
    ]
    total = len(out[0])
    count = 0
    while total < size:
        count += 1
        kind = count % 5
        lines = [" ".join(rng.choices(words, k=12)) for _ in range(rng.randint(200, 400))]
        if kind == 0:
            body = "#cloud-config\nruncmd:\n" + "".join(f"  - echo {ln}\n" for ln in lines[:80])
            head = "Content-Type: text/cloud-config\n"
            payload = body.encode()
        elif kind == 1:
            head = "Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64\n"
            payload = base64.encodebytes(gzip.compress(("#!/bin/sh\n" + "\n".join(lines)).encode()))
        elif kind == 2:
            head = "Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64\n"
            payload = base64.encodebytes(("#!/bin/sh\n" + "\n".join(lines)).encode())
        elif kind == 3:
            head = "Content-Type: application/gzip\n"
            payload = gzip.compress(("#!/bin/sh\n" + "\n".join(lines)).encode())
        else:
            head = "Content-Type: text/x-shellscript-per-boot\n"
            payload = ("#!/bin/sh\n" + "\n".join(lines) + "\n").encode()
        chunk = (
            (
                f'--{boundary}\n{head}Content-Disposition: attachment; filename="p{count}"\n\n'
            ).encode()
            + payload
            + b"\n"
        )
        out.append(chunk)
        total += len(chunk)
    out.append(f"--{boundary}--\n".encode())
    return b"".join(out), count


def child(path: Path, runs: int) -> dict[str, float | int]:
    from bootseed.late.userdata.engine import process
    from bootseed.late.userdata.types import Limits

    raw = path.read_bytes()
    limits = Limits()  # the defaults the late agent uses
    process(raw[:4096], limits=limits)  # imports and first-call costs out of the way
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = process(raw, limits=limits)
        times.append(time.perf_counter() - start)
        del result
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json_times = []
    for _ in range(runs):
        start = time.perf_counter()
        doc = process(raw, limits=limits).to_json()
        json_times.append(time.perf_counter() - start)
    tracemalloc.start()
    result = process(raw, limits=limits)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "input_bytes": len(raw),
        "parts": len(result.parts),
        "problems": len(result.problems),
        "payload_bytes": sum(p.size for p in result.parts),
        "cloud_config_keys": len(result.cloud_config),
        "process_s": min(times),
        "process_to_json_s": min(json_times),
        "tracemalloc_peak_bytes": peak,
        "maxrss_growth_bytes": max(0, rss_after - rss_before),
        "json_parts": len(doc["parts"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=float, default=16.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--child", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child), args.runs)))
        return 0
    raw, count = build(int(args.size_mib * (1 << 20)))
    with tempfile.NamedTemporaryFile(prefix="userdata-bench-") as handle:
        handle.write(raw)
        handle.flush()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", handle.name, "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    figures = json.loads(proc.stdout)
    figures["built_parts"] = count
    size = figures["input_bytes"]
    figures["tracemalloc_peak_x_input"] = round(figures["tracemalloc_peak_bytes"] / size, 2)
    figures["maxrss_growth_x_input"] = round(figures["maxrss_growth_bytes"] / size, 2)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    mib = 1 << 20
    print(f"input              {size / mib:8.2f} MiB, {count} parts")
    print(
        f"result             {figures['parts']} parts, {figures['payload_bytes'] / mib:.2f} MiB "
        f"of payload, {figures['problems']} problems"
    )
    print(f"process()          {figures['process_s']:8.3f} s   (target <= {TIME_TARGET_S:g} s)")
    print(f"process()+to_json  {figures['process_to_json_s']:8.3f} s")
    print(
        f"tracemalloc peak   {figures['tracemalloc_peak_bytes'] / mib:8.2f} MiB "
        f"= {figures['tracemalloc_peak_x_input']}x input   (target <= {MEMORY_TARGET_X:g}x)"
    )
    print(
        f"ru_maxrss growth   {figures['maxrss_growth_bytes'] / mib:8.2f} MiB "
        f"= {figures['maxrss_growth_x_input']}x input"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
