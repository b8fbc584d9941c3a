#!/usr/bin/env python3
"""bootseed's user-data engine next to cloud-init's, over the same inputs: time and agreement.

cloud-init is Debian's package (``apt-get download cloud-init`` into
``$BOOTSEED_CACHE/bench/cloud-init``, then ``dpkg-deb -x``; never installed).
Its side runs in a child process under the system ``python3`` with the
package's ``dist-packages`` first on ``sys.path``
(``bench/cloudinit_userdata_runner.py``: ``UserDataProcessor`` plus its default
part handlers, as its init stage runs them). bootseed's side is
``bootseed.late.userdata.engine.process`` in this process. Both are timed in
process, imports excluded (import times are printed once), best of ``--runs``.

The inputs are our own, built here: cloud-config, a shell script, gzip,
multipart MIME with scripts, boothook and merge headers, a cloud-config
archive, a JSON patch, per-boot/per-instance scripts. Agreement: the merged
cloud-config is equal (as JSON), and the parts handed to handlers are the
same content types with the same payloads (sha256), in order.

    .venv/bin/python bench/userdata_vs_cloudinit.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "cloudinit_userdata_runner.py"
DIST_PACKAGES = "usr/lib/python3/dist-packages"


def cache_dir() -> Path:
    return Path(os.environ.get("BOOTSEED_CACHE") or "/var/cache/bootseed") / "bench" / "cloud-init"


def extracted_cloud_init() -> tuple[Path, str]:
    """(dist-packages dir, package version) of Debian's cloud-init, downloaded once."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob("cloud-init_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", "cloud-init"], cwd=cache, check=True,
                       capture_output=True, timeout=300)
        debs = sorted(cache.glob("cloud-init_*.deb"))
    deb = debs[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    tree = cache / f"tree-{version}"
    if not (tree / DIST_PACKAGES / "cloudinit").is_dir():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, timeout=300)
    return tree / DIST_PACKAGES, version


def _mime(parts: list[tuple[str, bytes, dict[str, str]]]) -> bytes:
    boundary = "==bench-boundary=="
    out = [f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n']
    blobs = [b"".join(x.encode() for x in out)]
    for ctype, payload, headers in parts:
        head = f"--{boundary}\nContent-Type: {ctype}\nMIME-Version: 1.0\n"
        head += "".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n"
        blobs.append(head.encode() + payload + b"\n")
    blobs.append(f"--{boundary}--\n".encode())
    return b"".join(blobs)


def inputs() -> dict[str, bytes]:
    """Our example inputs, by name (include-free: no network)."""
    typical = (HERE / "typical" / "user-data").read_bytes()
    script = b"#!/bin/sh\necho hello from a script > /var/tmp/script-ran\n"
    config_a = b"#cloud-config\nruncmd:\n  - echo a\npackages: [curl]\nbootcmd:\n  - echo early\n"
    config_b = b"#cloud-config\nruncmd:\n  - echo b\nhostname: merged-host\n"
    archive = (b"#cloud-config-archive\n"
               b"- type: text/cloud-config\n  content: |\n    hostname: from-archive\n"
               b"    write_files:\n      - path: /etc/archived\n        content: hi\n"
               b"- type: text/x-shellscript\n  filename: arch.sh\n"
               b"  content: |\n    #!/bin/sh\n    echo archived\n"
               b"- content: |\n    #!/bin/sh\n    echo untyped\n")
    patch = json.dumps([{"op": "add", "path": "/runcmd/-", "value": "echo patched"},
                        {"op": "replace", "path": "/hostname", "value": "patched-host"}])
    return {
        "cloud-config (typical)": typical,
        "shell script": script,
        "gzip cloud-config": gzip.compress(typical, mtime=0),
        "multipart: 2 configs, script, boothook": _mime([
            ("text/cloud-config", config_a, {}),
            ("text/x-shellscript", script, {"Content-Disposition":
                                            'attachment; filename="one.sh"'}),
            ("text/cloud-boothook", b"#cloud-boothook\n#!/bin/sh\necho boothook\n", {}),
            ("text/cloud-config", config_b, {}),
        ]),
        "multipart: merge-type list(append)": _mime([
            ("text/cloud-config", config_a, {}),
            ("text/cloud-config", config_b,
             {"Merge-Type": "list(append)+dict(recurse_array)+str()"}),
        ]),
        "multipart: base64 gzip part": _mime([
            ("application/x-gzip", base64.encodebytes(gzip.compress(config_b, mtime=0)),
             {"Content-Transfer-Encoding": "base64"}),
            ("text/x-shellscript", base64.encodebytes(script),
             {"Content-Transfer-Encoding": "base64"}),
        ]),
        "cloud-config-archive": archive,
        "jsonp patch over a config": _mime([
            ("text/cloud-config", config_b, {}),
            ("text/cloud-config-jsonp", patch.encode(), {}),
        ]),
        "per-boot / per-instance scripts": _mime([
            ("text/x-shellscript-per-boot", script, {}),
            ("text/x-shellscript-per-instance", script.replace(b"hello", b"once"), {}),
        ]),
    }


def run_bootseed(blob: bytes, runs: int) -> dict[str, Any]:
    from bootseed.late.userdata import engine

    best = float("inf")
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = engine.process(blob)
        best = min(best, time.perf_counter() - started)
    assert result is not None
    doc = result.to_json()
    return {"seconds": best, "cloud_config": doc["cloud_config"],
            "parts": [{"content_type": p["content_type"], "filename": p["filename"],
                       "sha256": p["sha256"]} for p in doc["parts"]],
            "problems": [f"{p['where']}: {p['message']}" for p in doc["problems"]]}


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Differences between bootseed's and cloud-init's outcome of one input."""
    if "error" in theirs:
        return [f"cloud-init failed: {theirs['error']}"]
    diffs: list[str] = []
    a = json.loads(json.dumps(ours.get("cloud_config") or {}, sort_keys=True, default=str))
    b = json.loads(json.dumps(theirs.get("cloud_config") or {}, sort_keys=True, default=str))
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            diffs.append(f"cloud-config {key!r}: bootseed {json.dumps(a.get(key))[:120]} / "
                         f"cloud-init {json.dumps(b.get(key))[:120]}")
    ours_parts = [(p["content_type"], p["sha256"]) for p in ours.get("parts") or []]
    theirs_parts = [(p["content_type"], p["sha256"]) for p in theirs.get("parts") or []]
    if ours_parts != theirs_parts:
        diffs.append("parts: bootseed " + ", ".join(c for c, _ in ours_parts)
                     + " / cloud-init " + ", ".join(c for c, _ in theirs_parts)
                     + ("" if [c for c, _ in ours_parts] != [c for c, _ in theirs_parts]
                        else " (same types, other payloads)"))
    return diffs


def measure(runs: int = 5) -> dict[str, Any]:
    dist, version = extracted_cloud_init()
    cases = inputs()
    with tempfile.TemporaryDirectory(prefix="bench-userdata-") as tmp:
        items = []
        for n, (name, blob) in enumerate(cases.items()):
            path = Path(tmp) / f"input-{n}"
            path.write_bytes(blob)
            items.append({"name": name, "path": str(path)})
        proc = subprocess.run(["/usr/bin/python3", str(RUNNER), str(dist)],
                              input=json.dumps({"inputs": items, "runs": runs}),
                              capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"cloud-init runner failed: {proc.stderr.strip()[-2000:]}")
    theirs = json.loads(proc.stdout)
    started = time.perf_counter()
    import bootseed.late.userdata.engine  # noqa: F401
    ours_import = time.perf_counter() - started
    rows = []
    for item, their in zip(items, theirs["results"], strict=True):
        ours = run_bootseed(cases[item["name"]], runs)
        diffs = compare(ours, their)
        rows.append({"input": item["name"], "size": len(cases[item["name"]]),
                     "bootseed_s": ours["seconds"], "cloud_init_s": their.get("seconds"),
                     "agree": not diffs, "differences": diffs,
                     "bootseed_problems": ours["problems"]})
    total_ours = sum(r["bootseed_s"] for r in rows)
    total_theirs = sum(r["cloud_init_s"] or 0 for r in rows)
    return {"cloud_init_version": version, "runs": runs, "rows": rows,
            "bootseed_import_s": ours_import, "cloud_init_import_s": theirs["import_seconds"],
            "bootseed_total_s": total_ours, "cloud_init_total_s": total_theirs,
            "agree": sum(r["agree"] for r in rows), "inputs": len(rows)}


def render(data: dict[str, Any]) -> str:
    lines = [f"cloud-init {data['cloud_init_version']} (Debian package, extracted) vs "
             f"bootseed's engine; best of {data['runs']} runs, in process",
             "",
             "| input | bytes | bootseed ms | cloud-init ms | ratio | agree |",
             "|---|---:|---:|---:|---:|---|"]
    for row in data["rows"]:
        theirs = row["cloud_init_s"]
        ratio = f"{theirs / row['bootseed_s']:.1f}x" if theirs and row["bootseed_s"] else "-"
        lines.append(f"| {row['input']} | {row['size']} | {row['bootseed_s'] * 1000:.2f} | "
                     f"{theirs * 1000 if theirs is not None else float('nan'):.2f} | {ratio} | "
                     f"{'yes' if row['agree'] else 'no'} |")
    lines.append("")
    lines.append(f"Totals: bootseed {data['bootseed_total_s'] * 1000:.1f} ms, cloud-init "
                 f"{data['cloud_init_total_s'] * 1000:.1f} ms; imports: bootseed engine "
                 f"{data['bootseed_import_s'] * 1000:.0f} ms, cloud-init "
                 f"{data['cloud_init_import_s'] * 1000:.0f} ms. Agreement: {data['agree']} of "
                 f"{data['inputs']} inputs.")
    for row in data["rows"]:
        for diff in row["differences"]:
            lines.append(f"- {row['input']}: {diff}")
        for problem in row["bootseed_problems"]:
            lines.append(f"- {row['input']}: bootseed problem: {problem}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = measure(args.runs)
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
