"""``locale``: the system locale (cloud-init 22.4, Debian).

``LANG`` goes to ``/etc/default/locale`` (or ``locale_configfile``), keeping the
file's other lines. A locale the target does not have yet (``locale -a`` run in
the target) is enabled in ``/etc/locale.gen`` with the charset the target's
``/usr/share/i18n/SUPPORTED`` gives it, and ``locale-gen`` builds it. Without
the ``locales`` package (no ``locale-gen``) ``LANG`` is still written and the
missing locale is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

DEFAULT_CONFIGFILE = "/etc/default/locale"
LOCALE_GEN = "/etc/locale.gen"
LOCALE_GEN_TOOL = "/usr/sbin/locale-gen"
LOCALE_TOOL = "/usr/bin/locale"
SUPPORTED = "/usr/share/i18n/SUPPORTED"
# Locales glibc always has: nothing to generate.
BUILTIN = frozenset({"C", "POSIX", "C.utf8"})
# language[_territory][.codeset][@modifier], as glibc names locales.
_LOCALE_NAME = re.compile(r"[A-Za-z]+(_[A-Za-z0-9]+)?(\.[A-Za-z0-9_-]+)?(@[A-Za-z0-9_]+)?")
_CONFIGFILE = re.compile(r"(/[A-Za-z0-9_.+-]+)+")
_LOCALE_GEN_TIMEOUT = 600.0
SCHEMA: dict[str, Any] = {
    "properties": {
        "locale": {"type": "string", "minLength": 1},
        "locale_configfile": {"type": "string", "minLength": 1},
    }
}


class LocaleError(ValueError):
    """A value the module cannot use; the message names the key."""


@dataclass(frozen=True)
class LocaleChoice:
    name: str
    configfile: str


def normalized(name: str) -> str:
    """The spelling ``locale -a`` prints: the codeset lower case without '-'."""
    match = re.fullmatch(r"([^.@]+)(?:\.([^@]*))?(@.*)?", name)
    if match is None:
        return name
    base, codeset, modifier = match.groups()
    if codeset is not None:
        base += "." + codeset.lower().replace("-", "")
    return base + (modifier or "")


def read_choice(cfg: dict[str, Any]) -> LocaleChoice:
    name = cfg.get("locale")
    if not isinstance(name, str) or not _LOCALE_NAME.fullmatch(name):
        raise LocaleError("locale: is not a locale name (like en_US.UTF-8)")
    configfile = cfg.get("locale_configfile", DEFAULT_CONFIGFILE)
    if (not isinstance(configfile, str) or not _CONFIGFILE.fullmatch(configfile)
            or "/../" in configfile + "/" or "/./" in configfile + "/"):
        raise LocaleError("locale_configfile: must be an absolute path like "
                          f"{DEFAULT_CONFIGFILE}")
    return LocaleChoice(name, configfile)


def with_lang(text: str, name: str) -> str:
    lines = [line for line in text.splitlines() if not re.match(r"\s*LANG=", line)]
    return "\n".join([*lines, f"LANG={name}"]) + "\n"


def supported_entry(ctx: ModuleContext, name: str) -> str | None:
    """The ``NAME CHARSET`` line for ``name`` in the target's SUPPORTED list, if any."""
    for line in ctx.target.read_text(SUPPORTED, default="").splitlines():
        fields = line.split()
        if len(fields) == 2 and normalized(fields[0]) == normalized(name):
            return f"{fields[0]} {fields[1]}"
    return None


def available(ctx: ModuleContext, name: str) -> bool | None:
    """Whether the target has ``name`` built; None when ``locale -a`` cannot run there."""
    from bootseed.late.execute import can_run_in, run_captured

    if normalized(name) in BUILTIN:
        return True
    if not can_run_in(ctx.target) or not ctx.target.exists(LOCALE_TOOL):
        return None
    run = run_captured(ctx.target, ["locale", "-a"], timeout=60)
    if run.returncode != 0:
        return None
    return normalized(name) in {normalized(line.strip()) for line in run.output.splitlines()}


def enable_in_locale_gen(ctx: ModuleContext, entry: str) -> None:
    """Uncomment ``entry`` in /etc/locale.gen, or add it."""
    lines = ctx.target.read_text(LOCALE_GEN, default="").splitlines()
    wanted = entry.split()
    for index, line in enumerate(lines):
        fields = line.lstrip("#").split()
        if fields == wanted:
            if line.startswith("#"):
                lines[index] = entry
                break
            return
    else:
        lines.append(entry)
    ctx.target.write(LOCALE_GEN, "\n".join(lines) + "\n", mode=0o644)


def generate(ctx: ModuleContext, name: str) -> None:
    """Build ``name`` in the target; every way it cannot is reported on ``locale``."""
    from bootseed.late.execute import can_run_in, run_captured

    if not ctx.target.exists(LOCALE_GEN_TOOL):
        ctx.problems.append(Problem("locale", f"{name} is not built in the target and the "
                                    "locales package (locale-gen) is not installed; LANG is "
                                    "set, the locale itself is missing"))
        return
    entry = supported_entry(ctx, name)
    if entry is None:
        ctx.problems.append(Problem("locale", f"{name} is not listed in the target's "
                                    f"{SUPPORTED}; LANG is set, the locale is not generated"))
        return
    enable_in_locale_gen(ctx, entry)
    if not can_run_in(ctx.target):
        ctx.problems.append(Problem("locale", f"{name} enabled in {LOCALE_GEN}, but "
                                    "locale-gen cannot run in a target without /bin/sh"))
        return
    run = run_captured(ctx.target, ["locale-gen"], timeout=_LOCALE_GEN_TIMEOUT)
    if run.returncode != 0 or run.timed_out:
        tail = run.output.strip()[-300:]
        ctx.problems.append(Problem("locale", f"locale-gen failed for {name} "
                                    f"(status {run.returncode}): {tail}"))
        return
    ctx.log.info("generated locale %s", name)


def handle(ctx: ModuleContext) -> None:
    try:
        choice = read_choice(ctx.cfg)
    except LocaleError as exc:
        where, _, message = str(exc).partition(": ")
        ctx.problems.append(Problem(where, f"{message}; locale left as it is"))
        return
    current = ctx.target.read_text(choice.configfile, default="")
    ctx.target.write(choice.configfile, with_lang(current, choice.name), mode=0o644)
    ctx.log.info("LANG=%s written to %s", choice.name, choice.configfile)
    if available(ctx, choice.name) is not True:
        generate(ctx, choice.name)


MODULE = ModuleSpec(
    name="locale",
    stage=Stage.CONFIG,
    order=8,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("locale",),
)
