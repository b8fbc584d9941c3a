"""The fallback block in ``grub.cfg`` and ``panic=`` on the kernel command lines.

Two kinds of system:

* grub.cfg made by ``grub-mkconfig`` (Debian with grub-pc installed): the
  block comes from ``/etc/grub.d/42_bootseed_fallback`` whenever
  ``update-grub`` runs, and ``panic=`` from a ``/etc/default/grub.d`` drop-in.
* a grub.cfg written by an image builder (bootseed's own images): the same
  script's output is spliced in at the end between its ``BEGIN``/``END``
  markers, replacing an earlier block, and ``panic=N`` is appended to every
  other ``linux`` line that has no ``panic=``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from bootseed.late.fallback.config import ENTRY_ID
from bootseed.late.target import TargetRoot

BEGIN = "### BEGIN bootseed fallback ###"
END = "### END bootseed fallback ###"
GRUB_D_PATH = "/etc/grub.d/42_bootseed_fallback"
DEFAULTS_DROPIN = "/etc/default/grub.d/bootseed-fallback.cfg"
_LINUX_LINE = re.compile(r"^(\s*linux(?:16|efi)?\s+\S.*?)\s*$")


class GrubConfigError(Exception):
    """The fallback block could not be produced or placed."""


def top_level_entries(cfg_text: str) -> int:
    """How many menu entries and submenus a grub.cfg defines at its top level.

    GRUB 2.06 takes only entry numbers in ``fallback``; appended last, our
    entry's number is this count.
    """
    return sum(1 for line in cfg_text.splitlines()
               if re.match(r"(menuentry|submenu)\s", line))


def render_block(target: TargetRoot, script: Path, index: int | None = None) -> str:
    """Run the grub.d script for ``target`` and return what it prints."""
    env = dict(os.environ)
    env.pop("pkgdatadir", None)
    env["BOOTSEED_ROOT"] = "" if target.is_host else str(target.root)
    if index is not None:
        env["BOOTSEED_FALLBACK_INDEX"] = str(index)
    try:
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GrubConfigError(f"{script}: {exc}") from None
    if done.returncode != 0:
        raise GrubConfigError(f"{script} exited {done.returncode}: "
                              f"{done.stderr.strip() or 'no message'}")
    if BEGIN not in done.stdout:
        reason = done.stderr.strip() or done.stdout.strip()
        raise GrubConfigError(f"{script} made no fallback entry: {reason}")
    return done.stdout


def made_by_mkconfig(cfg_text: str) -> bool:
    head = "\n".join(cfg_text.splitlines()[:8])
    return "grub-mkconfig" in head


def strip_block(cfg_text: str) -> str:
    """``cfg_text`` without our block (every copy of it)."""
    out: list[str] = []
    inside = False
    for line in cfg_text.splitlines(keepends=True):
        if line.strip() == BEGIN:
            inside = True
            continue
        if inside:
            if line.strip() == END:
                inside = False
            continue
        out.append(line)
    return "".join(out)


def add_panic(cfg_text: str, panic: int) -> str:
    """Append ``panic=N`` to each ``linux`` line that has none."""
    out: list[str] = []
    for line in cfg_text.splitlines(keepends=True):
        match = _LINUX_LINE.match(line.rstrip("\n"))
        if match and not re.search(r"(^|\s)'?panic=", line):
            line = f"{match.group(1)} panic={panic}\n"
        out.append(line)
    return "".join(out)


def splice(cfg_text: str, block: str, panic: int) -> str:
    """The new grub.cfg: old block removed, ``panic=`` added, the block appended last.

    Last, because setting ``default`` there must come after whatever set it before.
    """
    base = add_panic(strip_block(cfg_text), panic)
    if base and not base.endswith("\n"):
        base += "\n"
    return base + block.rstrip("\n") + "\n"


def block_of(cfg_text: str) -> str | None:
    if BEGIN not in cfg_text:
        return None
    start = cfg_text.index(BEGIN)
    end = cfg_text.find(END, start)
    return cfg_text[start:] if end < 0 else cfg_text[start:end + len(END)]


def has_entry(cfg_text: str) -> bool:
    return f"--id {ENTRY_ID}" in cfg_text


def linux_lines_without_panic(cfg_text: str) -> list[str]:
    return [line.strip() for line in cfg_text.splitlines()
            if _LINUX_LINE.match(line) and "panic=" not in line]


def defaults_dropin(panic: int) -> str:
    return ("# Written by 'bootseed fallback install': a kernel that panics reboots\n"
            "# (and GRUB's boot counting moves on) instead of hanging.\n"
            f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX panic={panic}"\n')
