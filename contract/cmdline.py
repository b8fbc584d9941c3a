"""The kernel command line: the one splitter, the one parse and the one set of on/off words.

Every stage reads the command line through :func:`parse`, which returns one
:class:`KernelParams` with a typed field for every parameter bootseed reads:

- ``seed``: cloud-init's NoCloud syntax (``ds=nocloud;s=URL;i=ID;h=NAME``,
  ``ds=nocloud-net``, ``seedfrom=``), ``cloud-config-url=`` and ``bootseed.ds``,
  ``bootseed.seed``, ``bootseed.timeout``, ``bootseed.debug``;
- ``early``: ``bootseed.early`` (off words skip the initramfs stage, as ``bootseed=off``
  does; ``importtime`` is
  read by the initramfs-tools shim, which starts Python with ``-X importtime``);
- ``net``: ``bootseed.net`` (off, or the interface to use) and every ``ip=`` (whose
  value :mod:`bootseed.early.ipconfig` parses);
- ``rootswitch``: ``bootseed.rescue``, ``bootseed.root``, ``bootseed.overlay`` (alias
  ``bootseed.aufs`` / ``aufs``), ``bootseed.volumes``, ``init``;
- ``sshd``: ``bootseed.sshd=auto|off|always``, the initramfs SSH server for a root that
  will not mount (:mod:`bootseed.early.sshd`);
- ``bootseed=off`` (the late agent stays out), ``bootseed.fallback=`` (set by the GRUB
  fallback entry), ``root=``, and the boot lab's ``bootseed.lab.*``;
- ``network-config=disabled`` (cloud-init's spelling): bootseed writes no network
  configuration;
- ``bootseed.syslog=udp://HOST[:PORT]`` or ``tcp://...``: both stages send their log
  lines there, and the late agent points the system logger at it
  (:mod:`bootseed.contract.remotesyslog`).

Bad values become problems naming the parameter (``kernel command line: <param>``) and
are otherwise ignored, so one typo does not lose the rest. Each group keeps its own
problems so a stage reports only what it owns; :attr:`KernelParams.problems` has all.

On/off words (:data:`ON_WORDS`, :data:`OFF_WORDS`, :func:`parse_switch`) are the one
definition for every switch, case-insensitive. The initramfs shell shims repeat
:data:`OFF_WORDS` for ``bootseed.early`` in a ``case`` before Python starts.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bootseed.contract.problems import Problem
from bootseed.contract.remotesyslog import SyslogTarget, SyslogTargetError, parse_target

ON_WORDS = frozenset({"1", "on", "yes", "true", "enable", "enabled"})
# "none" is here because ip=none and bootseed.rescue=none have always meant off.
OFF_WORDS = frozenset({"0", "off", "no", "false", "disable", "disabled", "none"})

# Names accepted for ds= / bootseed.ds=, folded to the source that serves them.
DATASOURCE_ALIASES = {
    "nocloud": "nocloud",
    "nocloud-net": "nocloud",
    "nocloudnet": "nocloud",
    "ec2": "ec2",
    "openstack": "openstack",
    "ovf": "ovf",
    "configdrive": "configdrive",
    "config-drive": "configdrive",
    "config-2": "configdrive",
    "none": "none",
}
MAX_TIMEOUT = 600.0
OVERLAY_PARAMS = ("bootseed.overlay", "bootseed.aufs", "aufs")
LAB_PREFIX = "bootseed.lab."
_NOCLOUD_KEYS = {
    "s": "seedfrom",
    "seedfrom": "seedfrom",
    "i": "instance-id",
    "instance-id": "instance-id",
    "h": "local-hostname",
    "local-hostname": "local-hostname",
}
WHERE = "kernel command line"

Param = tuple[str, str | None]


def parse_switch(value: str | None) -> bool | None:
    """True for an on word, False for an off word, None for anything else (or no value)."""
    word = (value or "").strip().lower()
    if word in ON_WORDS:
        return True
    if word in OFF_WORDS:
        return False
    return None


def split_params(text: str) -> list[Param]:
    """Split like the kernel does: whitespace outside double quotes; quotes removed.

    ``name=value`` gives ``(name, value)``, a bare word ``(word, None)``. Everything
    after a lone ``--`` belongs to init and is dropped.
    """
    params: list[Param] = []
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


def format_param(name: str, value: str | None) -> str:
    """One parameter as the kernel would read it back (quoted when it holds whitespace)."""
    if value is None:
        return name
    if any(char.isspace() for char in value):
        return f'{name}="{value}"'
    return f"{name}={value}"


def _problem(param: str, message: str) -> Problem:
    return Problem(where=f"{WHERE}: {param}", message=message)


@dataclass(frozen=True)
class SeedParams:
    """What the command line says about the seed."""

    seed_url: str | None = None
    seed_url_param: str | None = None
    datasource: str | None = None
    instance_id: str | None = None
    hostname: str | None = None
    cloud_config_url: str | None = None
    timeout: float | None = None
    debug: bool = False
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class EarlyParams:
    """``bootseed.early``: off words skip the initramfs stage (``bootseed=off`` too)."""

    enabled: bool = True
    importtime: bool = False


@dataclass(frozen=True)
class NetParams:
    """``bootseed.net`` and ``ip=`` (values unparsed: the early stage owns their grammar)."""

    off: bool = False
    device: str | None = None
    ip_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class RootSwitchParams:
    """What the command line says about the root, after it is mounted."""

    rescue: str | None = None
    root: str | None = None
    overlay: str | None = None
    overlay_param: str = ""
    consume: bool | None = None
    init: str | None = None
    problems: list[Problem] = field(default_factory=list)


SSHD_MODES = ("auto", "off", "always")


@dataclass(frozen=True)
class SshdParams:
    """``bootseed.sshd``: ``auto`` starts the initramfs SSH server only when the root will
    not mount, ``always`` also for a healthy boot (stopped before the root switch), ``off``
    never (an off word means ``off``)."""

    mode: str = "auto"
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class KernelParams:
    """Every kernel parameter bootseed reads, typed; ``params`` keeps all of them in order."""

    params: tuple[Param, ...] = ()
    seed: SeedParams = field(default_factory=SeedParams)
    early: EarlyParams = field(default_factory=EarlyParams)
    net: NetParams = field(default_factory=NetParams)
    rootswitch: RootSwitchParams = field(default_factory=RootSwitchParams)
    sshd: SshdParams = field(default_factory=SshdParams)
    # ``bootseed=<off word>`` as written, e.g. ``bootseed=off``: the late agent stays out.
    disabled_by: str | None = None
    fallback: str | None = None
    root: str | None = None
    lab: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # ``network-config=disabled``: no network configuration is written.
    network_config_disabled: bool = False
    # ``bootseed.syslog=``: where both stages send their log lines (the last good one).
    syslog: SyslogTarget | None = None
    syslog_problems: list[Problem] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [*self.seed.problems, *self.rootswitch.problems, *self.sshd.problems,
                *self.syslog_problems]


def parse(text: str) -> KernelParams:
    """Parse a kernel command line (the text of ``/proc/cmdline``). Never raises."""
    params = split_params(text)
    disabled_by: str | None = None
    fallback: str | None = None
    root: str | None = None
    lab: dict[str, str] = {}
    network_config_disabled = False
    syslog: SyslogTarget | None = None
    syslog_problems: list[Problem] = []
    for name, value in params:
        if name == "network-config" and value == "disabled":
            network_config_disabled = True
        elif name == "bootseed.syslog":
            try:
                syslog = parse_target(value or "")
            except SyslogTargetError as exc:
                syslog_problems.append(_problem(f"bootseed.syslog={value or ''}",
                                                f"{exc}; ignored"))
        elif name == "bootseed" and parse_switch(value) is False:
            disabled_by = format_param(name, value)
        elif name == "bootseed.fallback" and value is not None:
            fallback = value
        elif name == "root" and value:
            root = value
        elif name.startswith(LAB_PREFIX):
            lab[name[len(LAB_PREFIX):]] = value or ""
    return KernelParams(params=tuple(params), seed=_parse_seed(params),
                        early=_parse_early(params), net=_parse_net(params),
                        rootswitch=_parse_rootswitch(params), sshd=_parse_sshd(params),
                        disabled_by=disabled_by,
                        fallback=fallback, root=root, lab=MappingProxyType(lab),
                        network_config_disabled=network_config_disabled, syslog=syslog,
                        syslog_problems=syslog_problems)


def _parse_early(params: Iterable[Param]) -> EarlyParams:
    enabled, importtime = True, False
    for name, value in params:
        # Like the shell shims: an off word anywhere turns the stage off, and so does
        # bootseed=off ("do nothing this boot": no seed search, no rescue, no overlay).
        if name in ("bootseed.early", "bootseed") and parse_switch(value) is False:
            enabled = False
        elif name == "bootseed.early" and value == "importtime":
            importtime = True
    return EarlyParams(enabled=enabled, importtime=importtime)


def _parse_net(params: Iterable[Param]) -> NetParams:
    off, device = False, None
    ip_values: list[str] = []
    for name, value in params:
        if name == "bootseed.net" and value:
            switch = parse_switch(value)
            # An on word asks for the default: DHCP on the first link with carrier.
            off, device = switch is False, value if switch is None else None
        elif name == "ip" and value is not None:
            ip_values.append(value)
    return NetParams(off=off, device=device, ip_values=tuple(ip_values))


def _parse_sshd(params: Iterable[Param]) -> SshdParams:
    mode = "auto"
    problems: list[Problem] = []
    for name, value in params:
        if name != "bootseed.sshd":
            continue
        word = (value or "").strip().lower()
        if word in SSHD_MODES:
            mode = word
        elif parse_switch(word) is False:
            mode = "off"
        else:
            problems.append(_problem(f"bootseed.sshd={value or ''}",
                                     "expected auto, off or always; ignored"))
    return SshdParams(mode=mode, problems=problems)


def _parse_rootswitch(params: Iterable[Param]) -> RootSwitchParams:
    rescue = root = overlay = init = None
    overlay_param = ""
    consume: bool | None = None
    problems: list[Problem] = []
    for name, value in params:
        if name == "bootseed.rescue":
            rescue = value or ""
        elif name == "bootseed.root":
            if value and (value.startswith("/dev/") or value.upper().startswith(("LABEL=",
                                                                                  "UUID="))):
                root = value
            else:
                problems.append(_problem(f"bootseed.root={value or ''}",
                                         "expected LABEL=NAME, UUID=UUID or /dev/NAME; ignored"))
        elif name in OVERLAY_PARAMS:
            overlay, overlay_param = value or "", name
        elif name == "bootseed.volumes":
            switch = parse_switch(value)
            if switch is None:
                problems.append(_problem(f"bootseed.volumes={value or ''}",
                                         "expected on or off; ignored"))
            else:
                consume = switch
        elif name == "init" and value:
            init = value
    return RootSwitchParams(rescue=rescue, root=root, overlay=overlay,
                            overlay_param=overlay_param, consume=consume, init=init,
                            problems=problems)


@dataclass
class _SeedBuilder:
    seed_url: str | None = None
    seed_url_param: str | None = None
    datasource: str | None = None
    instance_id: str | None = None
    hostname: str | None = None
    cloud_config_url: str | None = None
    timeout: float | None = None
    debug: bool = False
    problems: list[Problem] = field(default_factory=list)

    def problem(self, param: str, message: str) -> None:
        self.problems.append(_problem(param, message))


def _parse_seed(params: Iterable[Param]) -> SeedParams:
    args = _SeedBuilder()
    for name, value in params:
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
            args.debug = value is None or parse_switch(value) is not False
    return SeedParams(seed_url=args.seed_url, seed_url_param=args.seed_url_param,
                      datasource=args.datasource, instance_id=args.instance_id,
                      hostname=args.hostname, cloud_config_url=args.cloud_config_url,
                      timeout=args.timeout, debug=args.debug, problems=args.problems)


def _parse_ds(args: _SeedBuilder, value: str) -> None:
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


def _datasource(args: _SeedBuilder, param: str, value: str | None) -> str | None:
    source = DATASOURCE_ALIASES.get((value or "").lower())
    if source is None:
        known = ", ".join(sorted(set(DATASOURCE_ALIASES)))
        args.problem(f"{param}={value or ''}", f"unknown datasource; known: {known}")
    return source


def _set_seed_url(args: _SeedBuilder, param: str, value: str | None) -> None:
    url = _checked_url(args, param, value)
    if url is not None:
        args.seed_url = url
        args.seed_url_param = param


def _checked_url(args: _SeedBuilder, param: str, value: str | None) -> str | None:
    if not value:
        args.problem(param, "needs a URL or an absolute path")
        return None
    try:
        parts = urllib.parse.urlsplit(value)
        # Reading the port validates host and port too ("http://[::1", ":99999").
        parts.port  # noqa: B018
    except ValueError as exc:
        args.problem(f"{param}={value}", f"not a usable URL ({exc})")
        return None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https", "file") or (not scheme and value.startswith("/")):
        return value
    args.problem(f"{param}={value}", "not an http, https or file URL nor an absolute path")
    return None


def _parse_timeout(args: _SeedBuilder, value: str | None) -> None:
    try:
        seconds = float(value or "")
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TIMEOUT:
        args.problem(f"bootseed.timeout={value or ''}",
                     f"needs a number of seconds above 0 and at most {MAX_TIMEOUT:g}")
        return
    args.timeout = seconds
