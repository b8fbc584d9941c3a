"""Print how long an image build takes, step by step (root; uses the base-tree cache).

    .venv/bin/python bench/image_build.py [--out DIR] [--boot]

The first run on a machine includes mmdebstrap (the base tree is then cached
by package list); later runs show the rebuild-after-a-code-change time the
image builder aims at (seconds, not minutes). ``--boot`` also boots the image
once with no seed and prints the guest's time to multi-user.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bootseed.image_builder.build import BuildOptions, build_image
from bootseed.image_builder.lab import BootLab, BootOptions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--boot", action="store_true")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bootseed-bench-"))
    manifest = build_image(BuildOptions(out_dir=out), quiet=True)
    print(f"image build: {manifest.seconds:.1f} s total "
          f"(base tree {'cached' if manifest.base_reused else 'built'})")
    for step in manifest.steps:
        print(f"  {step['seconds']:7.1f} s  {step['name']}")
    raw = manifest.file("raw")
    assert raw is not None
    print(f"image: {raw.size / 2**30:.1f} GiB apparent, {raw.allocated / 2**20:.0f} MiB allocated")
    if args.boot:
        result = BootLab(Path(raw.path), out / "boots").boot(BootOptions())
        report = result.report
        multi_user = report.raw.get("multi_user_reached") if report else None
        print(f"no-seed boot: {result.seconds:.0f} s wall, multi-user at "
              f"{multi_user if multi_user is not None else '?'} s guest uptime")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
