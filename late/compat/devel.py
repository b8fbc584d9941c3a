"""``cloud-init devel make-mime``: build a MIME multipart user-data from files.

The only ``devel`` tool bootseed has; the others say so and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

NAME = "devel"
HELP = "developer tools: make-mime"
# The content types bootseed's user-data engine handles, by their short names.
PART_TYPES = ("cloud-config", "cloud-config-archive", "cloud-config-jsonp", "x-shellscript",
              "x-shellscript-per-boot", "x-shellscript-per-instance", "x-shellscript-per-once",
              "x-include-url", "x-include-once-url", "cloud-boothook", "jinja2",
              "part-handler")


def _attachment(value: str) -> tuple[Path, str]:
    path, sep, kind = value.rpartition(":")
    if not sep or not path or not kind:
        raise argparse.ArgumentTypeError(f"{value!r}: expected FILE:TYPE")
    return Path(path), kind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tools = parser.add_subparsers(dest="tool", metavar="TOOL")
    tools.required = True
    mime = tools.add_parser("make-mime", help="a MIME multipart from -a FILE:TYPE parts")
    mime.add_argument("--attach", "-a", type=_attachment, action="append", default=[],
                      metavar="FILE:TYPE", help="a part: file and short type (cloud-config, "
                                                "x-shellscript, ...); repeatable")
    mime.add_argument("--list-types", "-l", action="store_true",
                      help="the short types bootseed handles")
    mime.add_argument("--force", "-f", action="store_true",
                      help="accept a type bootseed does not know")
    for other in ("net-convert", "render", "schema", "hotplug-hook"):
        tools.add_parser(other, help="not supported by bootseed")


def make_mime(parts: list[tuple[str, str, str]]) -> str:
    """``parts``: ``(file name, short type, text)``; the multipart message as text."""
    message = MIMEMultipart()
    for name, kind, text in parts:
        part = MIMEText(text, kind, "utf-8")
        part.add_header("Content-Disposition", f'attachment; filename="{name}"')
        message.attach(part)
    return message.as_string()


def run(args: argparse.Namespace) -> int:
    from bootseed.contract.cli import CliError

    if args.tool != "make-mime":
        raise CliError(f"devel {args.tool}: not supported by bootseed")
    if args.list_types:
        print("\n".join(PART_TYPES))
        return 0
    if not args.attach:
        raise CliError("make-mime: give at least one -a FILE:TYPE")
    parts = []
    for path, kind in args.attach:
        if kind not in PART_TYPES and not args.force:
            raise CliError(f"make-mime: unknown type {kind!r} for {path} (--force to use it)")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"make-mime: cannot read {path}: {exc}") from exc
        parts.append((path.name, kind, text))
    sys.stdout.write(make_mime(parts))
    sys.stdout.write("\n")
    return 0
