"""``apt_configure``: mirrors, extra repositories and their keys, proxies, apt options.

cloud-init 22.4's ``apt`` key (and its legacy top-level spellings) on Debian:

- ``primary``/``security`` pick the mirrors per architecture (``uri``, else the
  first reachable ``search`` URL, else ``search_dns``); unless
  ``preserve_sources_list`` the image's main source file is written anew from
  ``sources_list`` (a template with ``$MIRROR``/``$PRIMARY``/``$SECURITY``/
  ``$RELEASE``) or the Debian default, in the image's own format
  (``/etc/apt/sources.list``, or deb822 ``debian.sources`` where the image has
  one), with ``disable_suites`` turned off;
- ``sources`` entries go to ``/etc/apt/sources.list.d/``, one-line or deb822;
  a ``key`` or ``keyid`` (fetched over HKP and checked against its
  fingerprint) is stored in ``/etc/apt/keyrings/`` and named by the entry's
  ``signed-by`` (``$KEY_FILE`` in the source, or added), never in
  ``trusted.gpg``;
- ``proxy``/``http_proxy``/``https_proxy``/``ftp_proxy`` and ``conf`` become
  apt.conf.d files, ``debconf_selections`` are fed to debconf.

Differences from cloud-init: it runs only when the config has apt settings,
so an image's sources are never rewritten unasked; a key that only comes
without a source is trusted through its own file in ``trusted.gpg.d``. One bad
entry is reported by name and the rest still applies.
"""

from __future__ import annotations

import platform
import re
import socket
from contextlib import suppress
from pathlib import PurePosixPath
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.apt import keys as aptkeys
from bootseed.late.apt import sources as aptsources
from bootseed.late.apt.config import (
    LEGACY_KEYS,
    AptConfig,
    SourceEntry,
    pick_mirror,
    read_apt_config,
    resolve_mirror,
)
from bootseed.late.execute import run_captured
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.target import TargetRoot

SOURCES_LIST = "/etc/apt/sources.list"
DEB822_MAIN = "/etc/apt/sources.list.d/debian.sources"
SOURCES_DIR = "/etc/apt/sources.list.d"
TRUSTED_DIR = "/etc/apt/trusted.gpg.d"
PROXY_FILE = "/etc/apt/apt.conf.d/90cloud-init-aptproxy"
CONF_FILE = "/etc/apt/apt.conf.d/94cloud-init-config"
SELECTIONS_FILE = "/var/lib/bootseed/debconf-selections"
_ARCH_NAMES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386",
               "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}
_SAFE_STEM = re.compile(r"[^A-Za-z0-9._-]")

_MIRROR_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "arches": {"type": "array", "items": {"type": "string"}},
            "uri": {"type": "string"},
            "search": {"type": "array", "items": {"type": "string"}},
            "search_dns": {"type": "boolean"},
            "keyid": {"type": "string"},
            "key": {"type": "string"},
            "keyserver": {"type": "string"},
        },
        "additionalProperties": False,
    },
}
_SOURCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "keyid": {"type": ["string", "integer"]},
        "key": {"type": "string"},
        "keyserver": {"type": "string"},
        "filename": {"type": "string"},
        "append": {"type": "boolean"},
    },
    "additionalProperties": False,
}
APT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "preserve_sources_list": {"type": "boolean"},
        "disable_suites": {"type": "array", "items": {"type": "string"}},
        "primary": _MIRROR_SCHEMA,
        "security": _MIRROR_SCHEMA,
        "add_apt_repo_match": {"type": "string"},
        "debconf_selections": {"type": "object", "additionalProperties": {"type": "string"}},
        "sources_list": {"type": "string"},
        "conf": {"type": "string"},
        "proxy": {"type": "string"},
        "http_proxy": {"type": "string"},
        "https_proxy": {"type": "string"},
        "ftp_proxy": {"type": "string"},
        "sources": {"type": "object", "additionalProperties": _SOURCE_SCHEMA},
    },
    "additionalProperties": False,
}
_LEGACY_SCHEMA: dict[str, Any] = {
    "apt_mirror": {"type": "string"},
    "apt_mirror_search": {"type": "array", "items": {"type": "string"}},
    "apt_mirror_search_dns": {"type": "boolean"},
    "apt_sources": {"type": "array", "items": {"type": "object"}},
    "apt_proxy": {"type": "string"},
    "apt_http_proxy": {"type": "string"},
    "apt_https_proxy": {"type": "string"},
    "apt_ftp_proxy": {"type": "string"},
    "apt_preserve_sources_list": {"type": "boolean"},
    "apt_custom_sources_list": {"type": "string"},
    "add_apt_repo_match": {"type": "string"},
    "debconf_selections": {"type": "object"},
}
assert set(_LEGACY_SCHEMA) == set(LEGACY_KEYS)


def handle(ctx: ModuleContext) -> None:
    conf = read_apt_config(ctx.cfg)
    ctx.problems.extend(conf.problems)
    target = ctx.target
    release = _release(target)
    arch = _architecture(target)
    _write_proxy(ctx, conf)
    _write_or_remove(target, CONF_FILE, conf.conf, 0o644)
    primary, security = _mirrors(ctx, conf, arch)
    if conf.preserve_sources_list and conf.disable_suites:
        ctx.problems.append(Problem("apt.disable_suites", "ignored: preserve_sources_list "
                                    "keeps the image's sources as they are", Level.NOTE))
    variables = {"MIRROR": primary, "PRIMARY": primary, "SECURITY": security,
                 "RELEASE": release}
    if not conf.preserve_sources_list:
        _write_main_sources(ctx, conf, variables, arch)
    _write_sources(ctx, conf, variables)
    _debconf(ctx, conf)


def _release(target: TargetRoot) -> str:
    text = target.read_text("/etc/os-release", default="")
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise RuntimeError("apt: /etc/os-release names no VERSION_CODENAME; cannot fill $RELEASE")


def _architecture(target: TargetRoot) -> str:
    run = run_captured(target, ["dpkg", "--print-architecture"], timeout=60)
    word = run.output.strip()
    if run.returncode == 0 and word and word.isidentifier():
        return word
    return _ARCH_NAMES.get(platform.machine(), platform.machine())


def _write_or_remove(target: TargetRoot, inside: str, text: str | None, mode: int) -> None:
    if text:
        target.write(inside, text if text.endswith("\n") else text + "\n", mode=mode)
    else:
        with suppress(FileNotFoundError):
            target.unlink(inside)


def _write_proxy(ctx: ModuleContext, conf: AptConfig) -> None:
    lines = [f'Acquire::{scheme}::Proxy "{url}";' for scheme, url in sorted(conf.proxies.items())]
    for url in conf.proxies.values():
        _hide_password(ctx, url)
    # A proxy URL may carry a password: readable by root only.
    mode = 0o600 if any("@" in url for url in conf.proxies.values()) else 0o644
    _write_or_remove(ctx.target, PROXY_FILE, "\n".join(lines), mode)


def _hide_password(ctx: ModuleContext, url: str) -> None:
    match = re.match(r"^[a-z][a-z0-9+.-]*://[^/@:]+:(?P<password>[^/@]+)@", url)
    if match:
        ctx.add_secret(match.group("password"))


def _mirrors(ctx: ModuleContext, conf: AptConfig, arch: str) -> tuple[str, str]:
    domain = socket.getfqdn().partition(".")[2] or None

    def reachable(url: str) -> bool:
        from bootseed.early import http

        try:
            return http.request(url, method="HEAD", timeout=3.0).status < 500
        except http.FetchError:
            return False

    chosen = []
    for kind, entries, fallback in (("primary", conf.primary, aptsources.DEFAULT_PRIMARY),
                                    ("security", conf.security, aptsources.DEFAULT_SECURITY)):
        entry = pick_mirror(entries, arch)
        url = resolve_mirror(entry, fallback, kind=kind, domain=domain, reachable=reachable)
        if entry is not None and not entry.uri and url == fallback and (
                entry.search or entry.search_dns):
            ctx.problems.append(Problem(f"apt.{kind}", f"no search candidate answered; "
                                        f"using {fallback}", Level.WARNING))
        chosen.append(url.rstrip("/"))
    return chosen[0], chosen[1]


def _write_main_sources(ctx: ModuleContext, conf: AptConfig, variables: dict[str, str],
                        arch: str) -> None:
    target = ctx.target
    release, primary, security = (variables["RELEASE"], variables["PRIMARY"],
                                  variables["SECURITY"])
    image_uses_deb822 = target.exists(DEB822_MAIN)
    template = conf.sources_list
    if template is None:
        template = (aptsources.DEFAULT_DEB822_TEMPLATE if image_uses_deb822
                    else aptsources.DEFAULT_ONE_LINE_TEMPLATE)
    try:
        text = aptsources.substitute(template, variables)
    except aptsources.TemplateError as exc:
        ctx.problems.append(Problem("apt.sources_list", f"{exc}; the image's sources are kept"))
        return
    text = aptsources.disable_suites(text, aptsources.suite_names(conf.disable_suites, release))
    for kind, entries, url in (("primary", conf.primary, primary),
                               ("security", conf.security, security)):
        entry = pick_mirror(entries, arch)
        if entry is not None and (entry.key or entry.keyid):
            keyfile = _install_key(ctx, f"apt.{kind}", f"{kind}-mirror", entry.key, entry.keyid,
                                   entry.keyserver, aptkeys.KEYRING_DIR)
            if keyfile is not None:
                text = aptsources.add_signed_by(text, keyfile, uri=url)
    if aptsources.is_deb822(text):
        target.write(DEB822_MAIN, text, mode=0o644)
        if target.exists(SOURCES_LIST) and not image_uses_deb822:
            target.write(SOURCES_LIST, "# bootseed: see sources.list.d/debian.sources\n")
    else:
        target.write(SOURCES_LIST, text, mode=0o644)
        if image_uses_deb822:
            # Both would list the same suites twice; the rendered file replaces it.
            target.unlink(DEB822_MAIN)


def _install_key(ctx: ModuleContext, where: str, stem: str, key: str | None,
                 keyid: str | None, keyserver: str | None, directory: str) -> str | None:
    """Store the key as ``directory/stem.gpg``; its path, or None (reported)."""
    try:
        if key:
            parsed = aptkeys.read_public_key(key)
            if keyid and not parsed.matches(keyid):
                raise aptkeys.AptKeyError("the inline key's fingerprint does not match keyid")
        elif keyid:
            parsed = aptkeys.fetch_key(keyid, keyserver)
        else:
            return None
    except aptkeys.AptKeyError as exc:
        ctx.problems.append(Problem(where, f"key not installed: {exc}"))
        return None
    inside = f"{directory}/{stem}.gpg"
    ctx.target.write(inside, parsed.binary, mode=0o644)
    ctx.log.info("%s: key %s installed as %s", where, parsed.fingerprints[0], inside)
    return inside


def _file_for(entry: SourceEntry, text: str) -> str:
    name = entry.filename or entry.name
    if not name.endswith((".list", ".sources")):
        name += ".sources" if aptsources.is_deb822(text) else ".list"
    path = PurePosixPath(name)
    if not path.is_absolute():
        path = PurePosixPath(SOURCES_DIR) / path
    return str(path)


def _write_sources(ctx: ModuleContext, conf: AptConfig, variables: dict[str, str]) -> None:
    pending: dict[str, list[tuple[SourceEntry, str]]] = {}
    for entry in conf.sources:
        where = f"apt.sources.{entry.name}"
        stem = _SAFE_STEM.sub("_", PurePosixPath(entry.filename or entry.name).name)
        stem = re.sub(r"\.(list|sources)$", "", stem) or "source"
        if entry.source is None:
            path = _install_key(ctx, where, stem, entry.key, entry.keyid, entry.keyserver,
                                TRUSTED_DIR)
            if path is None and not (entry.key or entry.keyid):
                ctx.problems.append(Problem(where, "has neither source nor key; nothing to do"))
            elif path is not None:
                ctx.problems.append(Problem(where, f"key without a source: trusted for every "
                                            f"source through {path}", Level.NOTE))
            continue
        if re.search(conf.add_apt_repo_match, entry.source):
            _add_apt_repository(ctx, where, entry.source)
            continue
        keyfile = None
        if entry.key or entry.keyid:
            keyfile = _install_key(ctx, where, stem, entry.key, entry.keyid, entry.keyserver,
                                   aptkeys.KEYRING_DIR)
            if keyfile is None:
                continue  # a source apt cannot verify would fail every apt-get update
        try:
            text = aptsources.substitute(entry.source, {**variables,
                                                        "KEY_FILE": keyfile or ""})
        except aptsources.TemplateError as exc:
            ctx.problems.append(Problem(where, f"{exc}; source not written"))
            continue
        if keyfile is not None and "$KEY_FILE" not in entry.source:
            text = aptsources.add_signed_by(text, keyfile)
        pending.setdefault(_file_for(entry, text), []).append((entry, text))
    for inside, items in pending.items():
        kept = ""
        if items[0][0].append:
            kept = ctx.target.read_text(inside, default="")
        lines = kept.splitlines()
        for _entry, text in items:
            block = text.rstrip("\n")
            if block not in "\n".join(lines):  # re-runs must not add it twice
                lines.append(block)
        ctx.target.write(inside, "\n".join(lines) + "\n", mode=0o644)


def _add_apt_repository(ctx: ModuleContext, where: str, source: str) -> None:
    if not ctx.target.exists("/usr/bin/add-apt-repository"):
        ctx.problems.append(Problem(where, "a repository shortcut needs add-apt-repository "
                                    "(package software-properties-common), which this "
                                    "image lacks; not added"))
        return
    run = run_captured(ctx.target, ["add-apt-repository", "--yes", source], timeout=300)
    if run.returncode != 0:
        tail = " / ".join(run.output.strip().splitlines()[-3:])
        ctx.problems.append(Problem(where, f"add-apt-repository failed: {tail}"))


def _debconf(ctx: ModuleContext, conf: AptConfig) -> None:
    if not conf.debconf_selections:
        return
    text = "\n".join(v.rstrip("\n") for v in conf.debconf_selections.values()) + "\n"
    ctx.target.write(SELECTIONS_FILE, text, mode=0o600)
    run = run_captured(ctx.target, ["debconf-set-selections", SELECTIONS_FILE], timeout=300)
    if run.returncode != 0:
        tail = " / ".join(run.output.strip().splitlines()[-3:])
        ctx.problems.append(Problem("apt.debconf_selections",
                                    f"debconf-set-selections failed: {tail}"))
        return
    packages = sorted({line.split()[0] for line in text.splitlines()
                       if line.strip() and not line.startswith("#")})
    for package in packages:
        status = run_captured(ctx.target, ["dpkg-query", "-W", "-f=${Status}", package],
                              timeout=60)
        if status.returncode == 0 and "install ok installed" in status.output:
            again = run_captured(ctx.target, ["dpkg-reconfigure", "--frontend=noninteractive",
                                              package], timeout=600)
            if again.returncode != 0:
                ctx.problems.append(Problem(f"apt.debconf_selections.{package}",
                                            "dpkg-reconfigure failed", Level.WARNING))


MODULE = ModuleSpec(
    name="apt_configure",
    stage=Stage.CONFIG,
    order=30,
    frequency=Frequency.PER_INSTANCE,
    schema={"properties": {"apt": APT_SCHEMA, **_LEGACY_SCHEMA}},
    handle=handle,
    activate_keys=("apt", *LEGACY_KEYS),
    aliases=("apt-configure",),
)
