"""The kernel command line, as far as finding the seed is concerned.

Understands cloud-init's NoCloud syntax (``ds=nocloud;s=URL;i=ID;h=NAME``,
``ds=nocloud-net``, ``seedfrom=``), ``cloud-config-url=`` and bootseed's own
``bootseed.*`` namespace. Bad values are reported as problems naming the
parameter and are otherwise ignored, so one typo does not lose the rest.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from bootseed.contract.seedcache import SeedProblem

# Names accepted for ds= / bootseed.ds=, folded to the source that serves them.
DATASOURCE_ALIASES = {
    "nocloud": "nocloud",
    "nocloud-net": "nocloud",
    "nocloudnet": "nocloud",
    "ec2": "ec2",
    "ovf": "ovf",
    "configdrive": "configdrive",
    "config-drive": "configdrive",
    "config-2": "configdrive",
    "none": "none",
}
MAX_TIMEOUT = 600.0
_NOCLOUD_KEYS = {
    "s": "seedfrom",
    "seedfrom": "seedfrom",
    "i": "instance-id",
    "instance-id": "instance-id",
    "h": "local-hostname",
    "local-hostname": "local-hostname",
}


@dataclass
class SeedArgs:
    """What the command line says about the seed."""

    seed_url: str | None = None
    seed_url_param: str | None = None
    datasource: str | None = None
    instance_id: str | None = None
    hostname: str | None = None
    cloud_config_url: str | None = None
    timeout: float | None = None
    debug: bool = False
    problems: list[SeedProblem] = field(default_factory=list)

    def problem(self, param: str, message: str) -> None:
        self.problems.append(SeedProblem(where=f"kernel command line: {param}", message=message))


def split_params(text: str) -> list[tuple[str, str | None]]:
    """Split like the kernel does: whitespace outside double quotes; quotes removed.

    Everything after a lone ``--`` belongs to init and is dropped.
    """
    params: list[tuple[str, str | None]] = []
    token: list[str] = []
    quoted = False
    in_token = False
    for char in text + " ":
        if char == '"':
            quoted = not quoted
            in_token = True
        elif char.isspace() and not quoted:
            if in_token:
                word = "".join(token)
                if word == "--":
                    break
                name, sep, value = word.partition("=")
                params.append((name, value if sep else None))
            token, in_token = [], False
        else:
            token.append(char)
            in_token = True
    return params


def parse(text: str) -> SeedArgs:
    args = SeedArgs()
    for name, value in split_params(text):
        if name == "ds" and value is not None:
            _parse_ds(args, value)
        elif name == "bootseed.ds":
            source = _datasource(args, name, value)
            if source is not None:
                args.datasource = source
        elif name in ("bootseed.seed", "seedfrom"):
            _set_seed_url(args, name, value)
        elif name == "cloud-config-url":
            url = _checked_url(args, name, value)
            if url is not None:
                args.cloud_config_url = url
        elif name == "bootseed.timeout":
            _parse_timeout(args, value)
        elif name == "bootseed.debug":
            args.debug = value is None or value.lower() not in ("0", "no", "false", "off")
    return args


def _parse_ds(args: SeedArgs, value: str) -> None:
    name, *fields = value.split(";")
    source = _datasource(args, "ds", name)
    if source is None:
        return
    args.datasource = source
    for item in fields:
        if not item:
            continue
        key, sep, val = item.partition("=")
        canonical = _NOCLOUD_KEYS.get(key)
        if not sep or canonical is None:
            args.problem(f"ds={value}", f"unknown field {item!r}; expected s=, i= or h=")
            continue
        if source != "nocloud":
            args.problem(f"ds={value}", f"field {key}= only applies to ds=nocloud")
            continue
        if canonical == "seedfrom":
            _set_seed_url(args, f"ds={name};{key}", val)
        elif canonical == "instance-id":
            args.instance_id = val or None
        else:
            args.hostname = val or None


def _datasource(args: SeedArgs, param: str, value: str | None) -> str | None:
    source = DATASOURCE_ALIASES.get((value or "").lower())
    if source is None:
        known = ", ".join(sorted(set(DATASOURCE_ALIASES)))
        args.problem(f"{param}={value or ''}", f"unknown datasource; known: {known}")
    return source


def _set_seed_url(args: SeedArgs, param: str, value: str | None) -> None:
    url = _checked_url(args, param, value)
    if url is not None:
        args.seed_url = url
        args.seed_url_param = param


def _checked_url(args: SeedArgs, param: str, value: str | None) -> str | None:
    if not value:
        args.problem(param, "needs a URL or an absolute path")
        return None
    scheme = urllib.parse.urlsplit(value).scheme.lower()
    if scheme in ("http", "https", "file") or (not scheme and value.startswith("/")):
        return value
    args.problem(f"{param}={value}", "not an http, https or file URL nor an absolute path")
    return None


def _parse_timeout(args: SeedArgs, value: str | None) -> None:
    try:
        seconds = float(value or "")
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TIMEOUT:
        args.problem(f"bootseed.timeout={value or ''}",
                     f"needs a number of seconds above 0 and at most {MAX_TIMEOUT:g}")
        return
    args.timeout = seconds
