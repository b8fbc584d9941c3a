"""The cloud-config ``apt`` settings as one typed value, legacy keys folded in.

cloud-init still accepts its older top-level spellings (``apt_mirror``,
``apt_sources``, ``apt_proxy``, ...); they are read here exactly once, turned
into the ``apt:`` form, and each use is reported as a deprecation note naming
the key and its replacement. Where both spellings are given, ``apt:`` wins
and the note says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bootseed.contract.problems import Level, Problem

DEFAULT_REPO_MATCH = r"^[\w-]+:\w"
PROXY_KEYS = {"proxy": "http", "http_proxy": "http", "https_proxy": "https",
              "ftp_proxy": "ftp"}
# legacy top-level key -> the apt: key it becomes
LEGACY_SIMPLE = {
    "apt_proxy": "http_proxy",
    "apt_http_proxy": "http_proxy",
    "apt_https_proxy": "https_proxy",
    "apt_ftp_proxy": "ftp_proxy",
    "apt_preserve_sources_list": "preserve_sources_list",
    "apt_custom_sources_list": "sources_list",
    "add_apt_repo_match": "add_apt_repo_match",
    "debconf_selections": "debconf_selections",
}
LEGACY_MIRROR = {"apt_mirror": "uri", "apt_mirror_search": "search",
                 "apt_mirror_search_dns": "search_dns"}
LEGACY_KEYS = (*LEGACY_SIMPLE, *LEGACY_MIRROR, "apt_sources")


@dataclass(frozen=True)
class MirrorEntry:
    arches: tuple[str, ...] = ("default",)
    uri: str | None = None
    search: tuple[str, ...] = ()
    search_dns: bool = False
    key: str | None = None
    keyid: str | None = None
    keyserver: str | None = None


@dataclass(frozen=True)
class SourceEntry:
    name: str
    source: str | None = None
    key: str | None = None
    keyid: str | None = None
    keyserver: str | None = None
    filename: str | None = None
    append: bool = True


@dataclass
class AptConfig:
    preserve_sources_list: bool = False
    disable_suites: list[str] = field(default_factory=list)
    primary: list[MirrorEntry] = field(default_factory=list)
    security: list[MirrorEntry] = field(default_factory=list)
    sources_list: str | None = None
    sources: list[SourceEntry] = field(default_factory=list)
    proxies: dict[str, str] = field(default_factory=dict)  # http/https/ftp -> URL
    conf: str | None = None
    debconf_selections: dict[str, str] = field(default_factory=dict)
    add_apt_repo_match: str = DEFAULT_REPO_MATCH
    problems: list[Problem] = field(default_factory=list)

    @property
    def touches_mirrors(self) -> bool:
        return not self.preserve_sources_list


def read_apt_config(cfg: dict[str, Any]) -> AptConfig:
    """The ``apt`` settings of a merged cloud-config (legacy keys included)."""
    problems: list[Problem] = []
    apt = cfg.get("apt")
    if apt is None:
        apt = {}
    if not isinstance(apt, dict):
        problems.append(Problem("apt", "must be a mapping; ignored"))
        apt = {}
    merged = _fold_legacy(cfg, dict(apt), problems)
    result = AptConfig(problems=problems)
    note = _Reader(problems)
    result.preserve_sources_list = note.boolean(merged, "preserve_sources_list", False)
    result.disable_suites = note.strings(merged, "disable_suites")
    result.primary = [_mirror(m, f"apt.primary[{i}]", note)
                      for i, m in enumerate(note.items(merged, "primary"))]
    result.security = [_mirror(m, f"apt.security[{i}]", note)
                       for i, m in enumerate(note.items(merged, "security"))]
    result.sources_list = note.text(merged, "sources_list")
    result.conf = note.text(merged, "conf")
    for key, scheme in PROXY_KEYS.items():
        value = note.text(merged, key)
        if value:
            result.proxies[scheme] = value
    selections = merged.get("debconf_selections") or {}
    if isinstance(selections, dict):
        result.debconf_selections = {str(k): str(v) for k, v in selections.items()
                                     if isinstance(v, str)}
    else:
        problems.append(Problem("apt.debconf_selections", "must be a mapping; ignored"))
    match = note.text(merged, "add_apt_repo_match")
    if match:
        result.add_apt_repo_match = match
    sources = merged.get("sources") or {}
    if isinstance(sources, dict):
        for name, entry in sources.items():
            parsed = _source(str(name), entry, note)
            if parsed is not None:
                result.sources.append(parsed)
    else:
        problems.append(Problem("apt.sources", "must be a mapping of names to entries; ignored"))
    return result


def _fold_legacy(
    cfg: dict[str, Any], apt: dict[str, Any], problems: list[Problem]
) -> dict[str, Any]:
    def deprecated(key: str, instead: str, overridden: bool) -> None:
        tail = "; apt: sets it too and wins" if overridden else ""
        problems.append(Problem(key, f"deprecated: use {instead} instead{tail}", Level.NOTE))

    for key, target in LEGACY_SIMPLE.items():
        if key in cfg:
            overridden = target in apt
            deprecated(key, f"apt: {{{target}: ...}}", overridden)
            apt.setdefault(target, cfg[key])
    legacy_mirror = {field_: cfg[key] for key, field_ in LEGACY_MIRROR.items() if key in cfg}
    if legacy_mirror:
        overridden = "primary" in apt
        for key in LEGACY_MIRROR:
            if key in cfg:
                deprecated(key, "apt: {primary: [{arches: [default], ...}]}", overridden)
        apt.setdefault("primary", [{"arches": ["default"], **legacy_mirror}])
    if "apt_sources" in cfg:
        legacy = cfg["apt_sources"]
        overridden = "sources" in apt
        deprecated("apt_sources", "apt: {sources: {NAME: {...}}}", overridden)
        if isinstance(legacy, list) and not overridden:
            converted: dict[str, Any] = {}
            for index, entry in enumerate(legacy):
                if not isinstance(entry, dict):
                    problems.append(Problem(f"apt_sources[{index}]", "must be a mapping; skipped"))
                    continue
                name = str(entry.get("filename") or "cloud_config_sources.list")
                while name in converted:
                    name = f"{name}.{index}"
                converted[name] = dict(entry)
            apt["sources"] = converted
    return apt


class _Reader:
    """Typed reads that report a wrong type by key and go on with the default."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def _wrong(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, f"must be {what}; ignored"))

    def boolean(self, doc: dict[str, Any], key: str, default: bool, prefix: str = "apt") -> bool:
        value = doc.get(key, default)
        if isinstance(value, bool):
            return value
        self._wrong(f"{prefix}.{key}", "true or false")
        return default

    def text(self, doc: dict[str, Any], key: str, prefix: str = "apt") -> str | None:
        value = doc.get(key)
        if value is None or isinstance(value, str):
            return value
        self._wrong(f"{prefix}.{key}", "a string")
        return None

    def strings(self, doc: dict[str, Any], key: str, prefix: str = "apt") -> list[str]:
        value = doc.get(key) or []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        self._wrong(f"{prefix}.{key}", "a list of strings")
        return []

    def items(self, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = doc.get(key) or []
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return list(value)
        self._wrong(f"apt.{key}", "a list of mappings")
        return []


def _mirror(doc: dict[str, Any], where: str, note: _Reader) -> MirrorEntry:
    arches = note.strings(doc, "arches", where) or ["default"]
    search = doc.get("search") or []
    if isinstance(search, str):
        search = [search]
    if not (isinstance(search, list) and all(isinstance(s, str) for s in search)):
        note._wrong(f"{where}.search", "a list of URLs")
        search = []
    return MirrorEntry(
        arches=tuple(arches),
        uri=note.text(doc, "uri", where),
        search=tuple(search),
        search_dns=note.boolean(doc, "search_dns", False, where),
        key=note.text(doc, "key", where),
        keyid=note.text(doc, "keyid", where),
        keyserver=note.text(doc, "keyserver", where),
    )


def _source(name: str, entry: Any, note: _Reader) -> SourceEntry | None:
    where = f"apt.sources.{name}"
    if not isinstance(entry, dict):
        note._wrong(where, "a mapping")
        return None
    append = entry.get("append", True)
    if not isinstance(append, bool):
        note._wrong(f"{where}.append", "true or false")
        append = True
    return SourceEntry(
        name=name,
        source=note.text(entry, "source", where),
        key=note.text(entry, "key", where),
        keyid=_keyid_text(entry.get("keyid"), f"{where}.keyid", note),
        keyserver=note.text(entry, "keyserver", where),
        filename=note.text(entry, "filename", where),
        append=append,
    )


def _keyid_text(value: Any, where: str, note: _Reader) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int):  # YAML reads an all-digit key id as a number
        return f"{value:X}" if value > 0 else None
    note._wrong(where, "a string")
    return None


def pick_mirror(entries: list[MirrorEntry], arch: str) -> MirrorEntry | None:
    """The entry for ``arch``, else the ``default`` one (cloud-init's rule)."""
    for entry in entries:
        if arch in entry.arches:
            return entry
    for entry in entries:
        if "default" in entry.arches:
            return entry
    return None


def resolve_mirror(entry: MirrorEntry | None, fallback: str, *, kind: str,
                   domain: str | None, reachable: Callable[[str], bool]) -> str:
    """The mirror URL: ``uri``, else the first reachable ``search`` URL, else (with
    ``search_dns``) the first reachable ``http://debian[-security]-mirror[.DOMAIN]/``."""
    if entry is None:
        return fallback
    if entry.uri:
        return entry.uri
    for url in entry.search:
        if reachable(url):
            return url
    if entry.search_dns:
        host = "debian-mirror" if kind == "primary" else "debian-security-mirror"
        path = "/debian" if kind == "primary" else "/debian-security"
        names = [f"{host}.{domain}"] if domain else []
        names += [host]
        for name in names:
            url = f"http://{name}{path}"
            if reachable(url):
                return url
    return fallback
