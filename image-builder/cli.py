"""``bootseed-image``: build images, make seed discs, boot images in the lab.

Verbs: ``build``, ``boot IMAGE``, ``seed-iso``, ``catalog DIR...``,
``site``. Each has ``--help``, exits
non-zero with a one-line reason on error and offers ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bootseed.contract import __version__
from bootseed.contract.cli import CliError, Program, Verb, loaded, run_program
from bootseed.contract.cli import build_parser as build_program_parser
from bootseed.image_builder.initramfsgen import DEFAULT_GENERATOR, GENERATORS
from bootseed.image_builder.manifest import FIRMWARES, FORMATS


def _size(text: str) -> int:
    from bootseed.image_builder.disk import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


# --- build -----------------------------------------------------------------

def _add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="output directory (default: ./out)")
    parser.add_argument("--name", default="bootseed-bookworm-amd64",
                        help="image base name (default: %(default)s)")
    parser.add_argument("--format", action="append", choices=FORMATS, dest="formats",
                        help="image format: raw, qcow2, vmdk (streamOptimized) or ova (OVF "
                        "descriptor + VMDK + SHA256 manifest); repeatable (default: raw)")
    parser.add_argument("--root-size", type=_size, default="10G",
                        help="root filesystem size, sparse (default: 10G)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache dir (default: $BOOTSEED_CACHE or /var/cache/bootseed)")
    parser.add_argument("--no-checksum", action="store_true", help="skip sha256 of the images")
    parser.add_argument("--agent", choices=("bootseed", "cloud-init"), default="bootseed",
                        help="first-boot agent in the image: bootseed (default), or Debian's "
                        "cloud-init package instead, same base otherwise (for benchmarks; "
                        "raw only)")
    parser.add_argument("--firmware", choices=FIRMWARES, default="bios",
                        help="boot code on the disk: bios (MBR + BIOS boot partition), uefi "
                        "(EFI system partition with GRUB's BOOTX64.EFI) or both (default: bios)")
    parser.add_argument("--initramfs", choices=tuple(GENERATORS), default=DEFAULT_GENERATOR,
                        help="what makes the initramfs: initramfs-tools (default) or dracut "
                        "(a base tree with dracut instead of initramfs-tools; the early stage "
                        "is bootseed's dracut module, its network pyroute2 with no klibc "
                        "ipconfig)")
    parser.add_argument("--json", action="store_true", help="print the build manifest as JSON")
    parser.add_argument("--initramfs-ssh-key", action="append", default=[], type=Path,
                        metavar="FILE", help="public key(s) the initramfs SSH server accepts "
                        "besides the instance's own when the root will not mount (repeatable)")


def _public_keys(files: list[Path]) -> tuple[str, ...]:
    keys: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--initramfs-ssh-key {path}: {exc.strerror}") from None
        keys += [line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    return tuple(keys)


def _run_build(args: argparse.Namespace) -> int:
    from bootseed.image_builder.build import build_image
    from bootseed.image_builder.disk import GIB
    from bootseed.image_builder.pipeline import BuildError, BuildOptions

    options = BuildOptions(
        out_dir=args.out,
        name=args.name,
        formats=tuple(args.formats or ("raw",)),
        root_size=args.root_size,
        cache=args.cache,
        checksums=not args.no_checksum,
        agent=args.agent,
        initramfs_ssh_keys=_public_keys(args.initramfs_ssh_key),
        firmware=args.firmware,
        initramfs=args.initramfs,
    )
    try:
        manifest = build_image(options, stream=sys.stderr)
    except BuildError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        _print_json(manifest.to_json())
    else:
        for entry in manifest.files:
            print(f"{entry.path}: {entry.format}, {entry.size / GIB:.1f} GiB "
                  f"({entry.allocated / 2**20:.0f} MiB allocated)"
                  + (f", sha256 {entry.sha256}" if entry.sha256 else ""))
        print(f"kernel {manifest.kernel_version}, {len(manifest.packages)} packages, "
              f"built in {manifest.seconds:.0f}s")
    return 0


# --- boot ------------------------------------------------------------------

def _add_boot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", type=Path, help="a built image (.raw or .qcow2 with its "
                        ".manifest.json beside it)")
    parser.add_argument("--nocloud-url", type=Path, metavar="DIR",
                        help="serve DIR over HTTP as a NoCloud seed; its URL goes on the "
                        "kernel command line")
    parser.add_argument("--imds", type=Path, metavar="DIR",
                        help="run the EC2 metadata mock with DIR's user-data/meta-data "
                        "(guest gets EC2's DMI)")
    parser.add_argument("--imds-mode", default="v2-required",
                        choices=("v2-required", "v2-optional", "v1-only"),
                        help="EC2 mock mode (default: v2-required, IMDSv2 tokens only)")
    parser.add_argument("--cidata", type=Path, metavar="DIR",
                        help="attach DIR's files as a cidata ISO (CD-ROM)")
    parser.add_argument("--ovf", type=Path, metavar="FILE",
                        help="attach FILE (ovf-env.xml) as an OVF ISO (CD-ROM)")
    parser.add_argument("--config-drive", type=Path, metavar="DIR",
                        help="attach DIR (meta_data.json, user_data) as a config-2 ISO")
    parser.add_argument("--disk", action="append", default=[], metavar="LABEL:SIZE",
                        help="attach an extra ext4 disk labelled LABEL (repeatable)")
    parser.add_argument("--kernel-arg", action="append", default=[], metavar="ARG",
                        help="extra kernel command line argument (repeatable)")
    parser.add_argument("--report-file", action="append", default=[], metavar="PATH",
                        help="guest file to include in the report (repeatable)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="hard limit for the whole boot in seconds (default: 300)")
    parser.add_argument("--memory", type=int, default=1024, help="guest MiB (default: 1024)")
    parser.add_argument("--cpus", type=int, default=1, help="guest CPUs (default: 1)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where overlays and logs go (default: a new dir under /tmp)")
    parser.add_argument("--firmware", choices=("bios", "uefi"), default="",
                        help="boot with SeaBIOS or OVMF (default: the image's firmware, BIOS "
                        "for a 'both' image)")
    parser.add_argument("--json", action="store_true",
                        help="print the result (problems and the guest's report) as JSON")


def _run_boot(args: argparse.Namespace) -> int:
    import tempfile

    from bootseed.image_builder.lab import BootLab, BootOptions, ExtraDisk, LabError
    from bootseed.image_builder.procrun import CommandFailed

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bootseed-lab-"))
    try:
        lab = BootLab(args.image, workdir)
        options = BootOptions(
            nocloud_dir=args.nocloud_url,
            imds_dir=args.imds,
            imds_mode=args.imds_mode,
            cidata_dir=args.cidata,
            ovf_file=args.ovf,
            config_drive_dir=args.config_drive,
            disks=[ExtraDisk.parse(d) for d in args.disk],
            kernel_args=list(args.kernel_arg),
            report_files=list(args.report_file),
            timeout=args.timeout,
            memory_mb=args.memory,
            cpus=args.cpus,
            firmware=args.firmware,
        )
        print(f"booting {args.image} (console log in {workdir}) ...", file=sys.stderr)
        result = lab.boot(options)
    except (LabError, CommandFailed, ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        _print_json({
            "ok": result.ok,
            "seconds": round(result.seconds, 1),
            "console_log": str(result.console_log),
            "kernel_args": result.kernel_args,
            "problems": result.problems(),
            "phone_home": [r.path for r in result.sink_requests],
            "report": result.report.raw if result.report else None,
        })
    else:
        print(result.summary())
    return 0 if result.ok else 1


# --- seed-iso ----------------------------------------------------------------

def _add_seed_iso_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("cidata", "ovf", "config-2"),
                        help="cidata: DIR's files; ovf: an ovf-env.xml FILE; config-2: DIR "
                        "with meta_data.json and user_data")
    parser.add_argument("source", type=Path, help="the seed directory or file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ISO file to write")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def _run_seed_iso(args: argparse.Namespace) -> int:
    from bootseed.image_builder.disk import sha256_file
    from bootseed.image_builder.lab import LabError, _load_seeddisc

    try:
        seeddisc = _load_seeddisc()
    except LabError as exc:
        raise CliError(str(exc)) from None
    source: Path = args.source
    if not source.exists():
        raise CliError(f"{source}: no such file or directory")
    try:
        if args.kind == "cidata":
            if not source.is_dir():
                raise CliError(f"{source}: cidata needs a directory")
            files = {p.name: p.read_bytes() for p in sorted(source.iterdir()) if p.is_file()}
            seeddisc.make_cidata_iso(args.output, files)
        elif args.kind == "ovf":
            seeddisc.make_ovf_iso(args.output, source.read_bytes())
        else:
            meta = source / "meta_data.json"
            user = source / "user_data"
            if not meta.is_file():
                raise CliError(f"{meta}: missing (config-2 needs meta_data.json)")
            seeddisc.make_config_drive_iso(
                args.output, json.loads(meta.read_text()),
                user.read_bytes() if user.is_file() else None)
    except (OSError, ValueError, seeddisc.SeedDiscError) as exc:
        raise CliError(f"{args.output}: {exc}") from None
    info = {"path": str(args.output), "kind": args.kind, "size": args.output.stat().st_size,
            "sha256": sha256_file(args.output)}
    if args.json:
        _print_json(info)
    else:
        print(f"{info['path']}: {info['kind']} ISO, {info['size']} bytes")
    return 0


# --- catalog -----------------------------------------------------------------

def _add_catalog_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("builds", type=Path, nargs="+", metavar="DIR",
                        help="build output directories (images with their .manifest.json)")
    parser.add_argument("--out", type=Path, required=True, metavar="OUTDIR",
                        help="mirror root to write (streams/v1/ and images/)")
    parser.add_argument("--sign-key", metavar="KEYID",
                        help="also write clearsigned .sjson files with this gpg key")
    parser.add_argument("--gnupghome", type=Path, metavar="DIR",
                        help="gpg home holding the signing key (default: gpg's own)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def _run_catalog(args: argparse.Namespace) -> int:
    from bootseed.image_builder.catalog import CatalogError, Signer, make_catalog
    from bootseed.image_builder.procrun import CommandFailed

    if args.gnupghome and not args.sign_key:
        raise CliError("--gnupghome needs --sign-key")
    signer = None
    if args.sign_key:
        home = args.gnupghome or Path(os.environ.get("GNUPGHOME", Path.home() / ".gnupg"))
        signer = Signer(args.sign_key, home)
    try:
        catalog = make_catalog(list(args.builds), args.out, signer)
    except (CatalogError, CommandFailed, OSError) as exc:
        raise CliError(str(exc)) from None
    if args.json:
        _print_json({"root": str(catalog.root), "index": catalog.index,
                     "products": catalog.products, "signed": catalog.signed,
                     "versions": catalog.versions})
    else:
        for product, versions in catalog.versions.items():
            print(f"{product}: {', '.join(versions)}")
        for rel in [catalog.index, catalog.products, *catalog.signed]:
            print(f"wrote {args.out / rel}")
    return 0


# --- site --------------------------------------------------------------------

def _add_site_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, required=True, metavar="DIR",
                        help="mirror root written by 'bootseed-image catalog'")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="where index.html and style.css go (the catalog dir itself "
                        "keeps every link working on any static server)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")


def _run_site(args: argparse.Namespace) -> int:
    from bootseed.image_builder.catalog import CatalogError
    from bootseed.image_builder.site import write_site

    try:
        written = write_site(args.catalog, args.out)
    except (CatalogError, OSError, ValueError, KeyError) as exc:
        raise CliError(f"{args.catalog}: {exc}") from None
    if args.json:
        _print_json({"written": [str(p) for p in written]})
    else:
        for path in written:
            print(f"wrote {path}")
    return 0


BUILD = Verb("build", "build a bootable Debian bookworm image with bootseed inside",
              _add_build_arguments, _run_build)
BOOT = Verb("boot", "boot an image under QEMU with a seed and report what the guest did",
            _add_boot_arguments, _run_boot)
SEED_ISO = Verb("seed-iso", "make a cidata, OVF or config-2 seed disc", _add_seed_iso_arguments,
                _run_seed_iso)
CATALOG = Verb("catalog", "write a simplestreams catalog (mirror tree) of built images",
               _add_catalog_arguments, _run_catalog)
SITE = Verb("site", "write a static landing page (index.html, style.css) for a catalog",
            _add_site_arguments, _run_site)
PROGRAM = Program(
    prog="bootseed-image",
    description="Build bootseed disk images and seed discs, and boot them under QEMU.",
    verbs=loaded(BUILD, BOOT, SEED_ISO, CATALOG, SITE),
    version=__version__,
)


def build_parser() -> argparse.ArgumentParser:
    return build_program_parser(PROGRAM)


def main(argv: list[str] | None = None) -> int:
    return run_program(PROGRAM, argv)


if __name__ == "__main__":
    sys.exit(main())
