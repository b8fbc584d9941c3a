"""``bootseed schema``: validate cloud-config against bootseed's schema, with YAML lines.

Exit 0 when valid (warnings such as unknown keys allowed), 1 with errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bootseed.late import jsonout

if TYPE_CHECKING:
    from bootseed.late.registry import Registry
    from bootseed.late.schema import SchemaProblem

NAME = "schema"
HELP = "validate a cloud-config file (or this system's config) and report problems by line"


def register(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config-file", "-c", type=Path, metavar="FILE",
                      help="a cloud-config YAML file")
    what.add_argument("--system", action="store_true",
                      help="this system's merged config: system config, vendor-data and "
                           "user-data from the seed cache (fetches #include URLs again)")
    what.add_argument("--dump", action="store_true", help="print the assembled JSON schema")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root for --system (default: /)")
    parser.add_argument("--json", action="store_true", help="print problems as JSON")


def run(args: argparse.Namespace) -> int:
    from bootseed.late.cli import CommandError
    from bootseed.late.registry import load_registry
    from bootseed.late.schema import build_schema

    registry = load_registry()
    if args.dump:
        print(jsonout.dumps(build_schema(registry), indent=2, sort_keys=True))
        return 0
    if args.config_file is not None:
        problems = check_file(args.config_file, registry)
    else:
        problems = check_system(args.root, registry)
    errors = [p for p in problems if p.level == "error"]
    if args.json:
        doc = {"valid": not errors,
               "problems": [{"where": p.where, "message": p.message, "level": p.level}
                            for p in problems]}
        print(jsonout.dumps(doc, indent=2))
        return 1 if errors else 0
    for p in problems:
        print(f"{p.level}: {p.where}: {p.message}")
    if errors:
        raise CommandError(f"invalid: {len(errors)} error(s)")
    print("valid")
    return 0


def check_file(path: Path, registry: Registry) -> list[SchemaProblem]:
    import yaml
    from bootseed.late.cli import CommandError
    from bootseed.late.schema import SchemaProblem, validate
    from bootseed.late.userdata.yamlmarks import load_with_marks

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: {exc}") from exc
    try:
        data, marks = load_with_marks(text)
    except (yaml.YAMLError, ValueError) as exc:
        return [SchemaProblem(str(path), f"not valid YAML: {exc}", "error")]
    origins = {key: f"{path} line {line}" for key, line in marks.items()}
    return validate({} if data is None else data, registry, origins)


def check_system(root: Path, registry: Registry) -> list[SchemaProblem]:
    import tempfile

    from bootseed.contract.seedcache import SeedCacheError, read_seed_cache
    from bootseed.late.cli import CommandError
    from bootseed.late.instance import build_instance_data, instance_info
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.schema import SchemaProblem
    from bootseed.late.target import TargetRoot
    from bootseed.late.userdata_flow import build_config

    target = TargetRoot(root)
    try:
        seed = read_seed_cache(target.path(DEFAULT_RUN_DIR))
    except (SeedCacheError, PermissionError) as exc:
        raise CommandError(f"cannot read the seed cache: {exc}") from exc
    if seed is None:
        raise CommandError(f"no seed cache in {target.path(DEFAULT_RUN_DIR)}")
    info = instance_info(seed)
    with tempfile.TemporaryDirectory(prefix="bootseed-schema-") as scratch:
        built = build_config(seed, info, target, Path(scratch),
                             build_instance_data(seed, info), registry)
    return [SchemaProblem(where, message, level) for where, message, level in built.problems]
