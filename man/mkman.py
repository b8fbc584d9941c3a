"""Write the ``bootseed`` man pages from the CLI's own argparse definitions.

Generated at package build time, so a page never disagrees with ``--help``:
``bootseed.1`` (global options and the verb list) and ``bootseed-VERB.1`` for every
verb. Hand-written pages in this folder (``*.[1-8]``) are copied beside them.

The tree's ``late/``, ``early/`` and ``contract/`` are made importable as
``bootseed.late`` / ``bootseed.early`` / ``bootseed.contract`` through a temporary
symlink package, so this runs from a plain source tree with only the standard library
(the verbs import nothing heavy until run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent


@dataclass(frozen=True)
class Option:
    spec: str  # roff, e.g. "\fB\-\-stage\fR \fISTAGE\fR"
    text: str


@dataclass(frozen=True)
class Page:
    name: str  # "bootseed" or "bootseed-run"
    summary: str
    synopsis: str  # roff
    description: str
    options: list[Option]
    extra: list[tuple[str, str]]  # (section title, roff body)


def roff_text(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _flag(text: str) -> str:
    return "\\fB" + roff_text(text) + "\\fR"


def _arg(text: str) -> str:
    return "\\fI" + roff_text(text) + "\\fR"


def _expand_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    values = dict(vars(action), prog=parser.prog)
    if action.choices is not None:
        values["choices"] = ", ".join(str(c) for c in action.choices)
    return action.help % values if "%" in action.help else action.help


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper()


def _options(parser: argparse.ArgumentParser) -> tuple[list[Option], list[str]]:
    """The optional arguments as man entries, and the synopsis parts for positionals."""
    options: list[Option] = []
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        help_text = _expand_help(parser, action)
        if not action.option_strings:
            positionals.append(_arg(_metavar(action)))
            options.append(Option(_arg(_metavar(action)), help_text))
            continue
        takes_value = action.nargs != 0
        names = ", ".join(_flag(o) for o in action.option_strings)
        spec = f"{names} {_arg(_metavar(action))}" if takes_value else names
        options.append(Option(spec, help_text))
    return options, positionals


def _verbs(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return sorted(found)


EXIT_STATUS = (
    "0 on success. A failure the user can act on prints one line naming the problem on "
    "standard error and exits non-zero (1 unless the verb documents other codes); 2 is "
    "also argparse's status for a usage error."
)


def build_pages(parser: argparse.ArgumentParser) -> list[Page]:
    verbs = _verbs(parser)
    top_options, _ = _options(parser)
    verb_list = "\n".join(f".TP\n{_flag(name)}\n{roff_text(text)}" for name, text, _ in verbs)
    see_also = ", ".join(f"\\fBbootseed\\-{roff_text(n)}\\fR(1)" for n, _, _ in verbs)
    pages = [Page(
        name="bootseed",
        summary=parser.description or "",
        synopsis=f"\\fBbootseed\\fR [{_flag('--version')}] {_arg('VERB')} [{_arg('OPTIONS')}]",
        description=(parser.description or "") + " Each verb has its own page and --help.",
        options=top_options,
        extra=[("COMMANDS", verb_list), ("EXIT STATUS", roff_text(EXIT_STATUS)),
               ("SEE ALSO", see_also + ", \\fBbootseed\\-generator\\fR(8)")],
    )]
    for name, text, sub in verbs:
        options, positionals = _options(sub)
        synopsis = f"\\fBbootseed {roff_text(name)}\\fR [{_arg('OPTIONS')}]"
        if positionals:
            synopsis += " " + " ".join(positionals)
        pages.append(Page(
            name=f"bootseed-{name}",
            summary=text,
            synopsis=synopsis,
            description=(sub.description or text),
            options=options,
            extra=[("EXIT STATUS", roff_text(EXIT_STATUS)), ("SEE ALSO", "\\fBbootseed\\fR(1)")],
        ))
    return pages


def render(page: Page, version: str, date: str) -> str:
    out = [
        f'.TH "{roff_text(page.name.upper())}" "1" "{date}" "bootseed {version}" "bootseed manual"',
        ".SH NAME",
        f"{roff_text(page.name)} \\- {roff_text(page.summary)}",
        ".SH SYNOPSIS",
        page.synopsis,
        ".SH DESCRIPTION",
        roff_text(page.description),
    ]
    if page.options:
        out.append(".SH OPTIONS")
        for option in page.options:
            out += [".TP", option.spec, roff_text(option.text)]
    for title, body in page.extra:
        out += [f".SH {title}", body]
    return "\n".join(out) + "\n"


@contextmanager
def importable_tree(source: Path) -> Iterator[None]:
    """``bootseed.contract``, ``.early`` and ``.late`` importable from ``source``, uninstalled."""
    with tempfile.TemporaryDirectory(prefix="bootseed-mkman-") as tmp:
        package = Path(tmp) / "bootseed"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for name in ("contract", "early", "late"):
            (package / name).symlink_to(source / name)
        sys.path.insert(0, tmp)
        try:
            yield
        finally:
            sys.path.remove(tmp)


def build_date() -> str:
    # Reproducible builds: the date of the changelog entry when dpkg-buildpackage runs us.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = float(epoch) if epoch and epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%d", time.gmtime(stamp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory to write pages to")
    parser.add_argument("--source", type=Path, default=SOURCE,
                        help="bootseed source tree (default: this script's parent)")
    args = parser.parse_args(argv)
    with importable_tree(args.source.resolve()):
        from bootseed.contract import __version__
        from bootseed.late.cli import build_parser

        pages = build_pages(build_parser())
    args.out.mkdir(parents=True, exist_ok=True)
    date = build_date()
    for page in pages:
        (args.out / f"{page.name}.1").write_text(render(page, __version__, date))
    for handwritten in sorted(HERE.glob("*.[1-8]")):
        shutil.copyfile(handwritten, args.out / handwritten.name)
    print(f"mkman: {len(pages)} generated pages in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
