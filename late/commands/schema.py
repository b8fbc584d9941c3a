"""``bootseed schema``: validate cloud-config against bootseed's schema, with YAML lines.

Exit 0 when valid (warnings such as unknown keys allowed), 1 with errors.
``--dump`` lists every top-level key with the module that owns it (``--json``:
that map and the assembled schema).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bootseed.contract.problems import Level, Problem, problems_to_json
from bootseed.late import jsonout

if TYPE_CHECKING:
    from bootseed.late.registry import Registry

NAME = "schema"
HELP = "validate a cloud-config file (or this system's config) and report problems by line"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--config-file", "-c", type=Path, metavar="FILE",
                      help="a cloud-config YAML file")
    what.add_argument("--system", action="store_true",
                      help="this system's merged config: system config, vendor-data and "
                           "user-data from the seed cache (fetches #include URLs again)")
    what.add_argument("--dump", action="store_true",
                      help="list every top-level key with the module that owns it "
                           "(with --json: that map and the assembled JSON schema)")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="target root for --system (default: /)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--annotate", action="store_true",
                        help="with --config-file: print the file, each problem's line marked "
                             "(E1, W2, N3) and the marks explained after it")


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError
    from bootseed.late.registry import load_registry
    from bootseed.late.schema import SchemaConflictError

    registry = load_registry()
    try:
        if args.dump:
            return dump(registry, args.json)
        if args.config_file is not None:
            problems = check_file(args.config_file, registry)
        else:
            problems = check_system(args.root, registry)
    except SchemaConflictError as exc:
        raise CliError(str(exc)) from exc
    errors = [p for p in problems if p.level is Level.ERROR]
    if args.json:
        doc = {"valid": not errors,
               "problems": problems_to_json(problems)}
        print(jsonout.dumps(doc, indent=2))
        return 1 if errors else 0
    if args.annotate and args.config_file is not None:
        from bootseed.late.schemaannotate import annotate

        print(annotate(args.config_file.read_text(encoding="utf-8"), problems), end="")
    else:
        for p in problems:
            print(f"{p.level}: {p.where}: {p.message}")
    if errors:
        raise CliError(f"invalid: {len(errors)} error(s)")
    print("valid")
    return 0


def dump(registry: Registry, as_json: bool) -> int:
    from bootseed.late.schema import build_schema, key_owners

    owners = dict(sorted(key_owners(registry).items()))
    if as_json:
        print(jsonout.dumps({"owners": owners, "schema": build_schema(registry)},
                           indent=2, sort_keys=True))
        return 0
    width = max(len(key) for key in owners)
    for key, owner in owners.items():
        print(f"{key:<{width}}  {owner}")
    return 0


def check_file(path: Path, registry: Registry) -> list[Problem]:
    import yaml
    from bootseed.contract.cli import CliError
    from bootseed.late.schema import validate
    from bootseed.late.userdata.yamlmarks import load_with_marks

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: {exc}") from exc
    try:
        data, marks = load_with_marks(text)
    except (yaml.YAMLError, ValueError) as exc:
        return [Problem(str(path), f"not valid YAML: {exc}")]
    origins = {key: f"{path} line {line}" for key, line in marks.items()}
    return validate({} if data is None else data, registry, origins)


def check_system(root: Path, registry: Registry) -> list[Problem]:
    import tempfile

    from bootseed.contract.cli import CliError
    from bootseed.contract.seedcache import SeedCacheError, read_seed_cache
    from bootseed.late.instance import build_instance_data, instance_info
    from bootseed.late.runner import DEFAULT_RUN_DIR
    from bootseed.late.target import TargetRoot
    from bootseed.late.userdata_flow import build_config

    target = TargetRoot(root)
    try:
        seed = read_seed_cache(target.path(DEFAULT_RUN_DIR))
    except (SeedCacheError, PermissionError) as exc:
        raise CliError(f"cannot read the seed cache: {exc}") from exc
    if seed is None:
        raise CliError(f"no seed cache in {target.path(DEFAULT_RUN_DIR)}")
    info = instance_info(seed)
    with tempfile.TemporaryDirectory(prefix="bootseed-schema-") as scratch:
        built = build_config(seed, info, target, Path(scratch),
                             build_instance_data(seed, info), registry)
    return built.problems
