"""The user-data engine: raw bytes in, parts + merged cloud-config + problems out.

``process`` never raises on bad input. Everything wrong is reported as a
``Problem`` naming where it is (``user-data part 2 (x.yaml) line 4``,
``... include http://host/path``), and every other part still comes through:
each part is unpacked and merged on its own, so one part that breaks in an
unforeseen way is reported and skipped, not the run. Every expansion (gzip,
includes, templates, YAML aliases, JSON patches) charges the run's one
``Budget`` (bytes, nodes, time; see ``Limits``).

Flow: gunzip the blob if needed, cut MIME multiparts into leaves, detect each
leaf's type (declared type, else cloud-init's first-line rules), expand
includes / archives / jinja templates in place, then filter by launch index
and merge cloud-config parts (and apply JSON patches) in document order.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from bootseed.contract.problems import Level, Problem
from bootseed.early.boundedyaml import long_integers, path_text
from bootseed.early.budget import Budget as TimeBudget
from bootseed.late.userdata import detect as ct
from bootseed.late.userdata import mime
from bootseed.late.userdata.budget import BudgetExceeded
from bootseed.late.userdata.gunzip import GunzipError, gunzip
from bootseed.late.userdata.includes import IncludeCache, parse_include_list
from bootseed.late.userdata.jsonpatch import PatchError, apply_patch, value_size
from bootseed.late.userdata.merge import (
    DEFAULT,
    Mergers,
    MergeSpecError,
    Owned,
    merge_traced,
    parse_how,
    pop_merge_how,
)
from bootseed.late.userdata.trace import Trace, build, flatten, from_flat
from bootseed.late.userdata.types import Limits, Part, PartRecord, UserDataResult
from bootseed.late.userdata.yamlmarks import YamlLimitError, load_counted

_DEFAULT_LIMITS = Limits()


@dataclass
class _Candidate:
    """A leaf that may become a Part once launch-index filtering is done."""

    content_type: str
    payload: bytes
    where: str
    filename: str | None
    index_header: str | None
    merge_how: str | None
    config: Any = None
    marks: dict[tuple[Any, ...], int] = field(default_factory=dict)
    patch: Any = None


@dataclass(frozen=True)
class _Meta:
    """What travels with a payload from its container to the leaf it becomes."""

    where: str
    filename: str | None = None
    index_header: str | None = None
    merge_how: str | None = None


def process(
    raw: bytes,
    *,
    origin: str = "user-data",
    launch_index: int | None = None,
    instance_data: dict[str, Any] | None = None,
    limits: Limits = _DEFAULT_LIMITS,
    include_cache_dir: Path | None = None,
) -> UserDataResult:
    """Unpack and merge one user-data (or vendor-data) blob; never raises on bad input.

    ``launch_index``: keep only parts for this index (parts without one apply
    to all). ``instance_data``: the ``instance-data.json`` shaped dict jinja
    templates see. ``include_cache_dir``: where ``#include-once`` bodies are
    kept (0700 dir, 0600 files); None disables that cache.
    """
    run = _Run(origin, launch_index, instance_data, limits, include_cache_dir)
    try:
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")
        run.blob(data, _Meta(origin), 0, ())
    except Exception as exc:  # the contract is "never raises"; say what broke instead
        run.problem(origin, f"internal error while unpacking: {type(exc).__name__}: {exc}")
    try:
        return run.finish()
    except Exception as exc:
        result = UserDataResult(problems=list(run.problems), notes=list(run.notes))
        result.problems.append(
            Problem(origin, f"internal error while merging: {type(exc).__name__}: {exc}")
        )
        return result


def overlay_results(base: UserDataResult, top: UserDataResult) -> UserDataResult:
    """Combine vendor-data (``base``) with user-data (``top``): user-data wins.

    Configs merge with cloud-init's default chain, parts are base's then top's
    (vendor scripts run before user scripts), problems and notes are kept.
    """
    base_t = from_flat(base.cloud_config, base.key_origins, "")
    top_t = from_flat(top.cloud_config, top.key_origins, "")
    merged, merged_t = merge_traced(base.cloud_config, top.cloud_config, DEFAULT, base_t, top_t)
    return UserDataResult(
        parts=[*base.parts, *top.parts],
        cloud_config=merged if isinstance(merged, dict) else {},
        problems=[*base.problems, *top.problems],
        key_origins=flatten(merged_t) if merged_t is not None else {},
        notes=[*base.notes, *top.notes],
        records=[*base.records, *top.records],
    )


class _Run:
    def __init__(
        self,
        origin: str,
        launch_index: int | None,
        instance_data: dict[str, Any] | None,
        limits: Limits,
        include_cache_dir: Path | None,
    ) -> None:
        self.origin = origin
        self.launch_index = launch_index
        self.instance_data = instance_data
        self.limits = limits
        self.cache = IncludeCache(include_cache_dir) if include_cache_dir is not None else None
        self.budget = limits.budget()
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.candidates: list[_Candidate] = []
        # Every part met, by where: (content type, file name, size), first seen first.
        self.seen: dict[str, tuple[str | None, str | None, int | None]] = {}
        self.dispatched = 0
        self.stopped = False
        self.includes_done = 0
        # Started by the first download: one time budget for every include of the run.
        self.include_deadline: TimeBudget | None = None
        self._variables: dict[str, Any] | None = None
        # Containers the merge fold made itself, so later parts may grow them in place.
        self.owned = Owned()

    def problem(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))
        # A problem somewhere no part was met (an include URL, an archive item, a
        # broken MIME entity, a template's rendering) is a part that failed: it keeps
        # its place in the list of every part.
        if not self._known(where):
            self.seen[where] = (None, None, None)

    def _known(self, where: str) -> bool:
        return any(key in self.seen for key in _part_keys(where))

    def note(self, where: str, message: str) -> None:
        self.notes.append(Problem(where, message, Level.NOTE))

    # -- unpacking -------------------------------------------------------------------------

    def blob(self, data: bytes, meta: _Meta, include_depth: int, chain: tuple[str, ...]) -> None:
        """A whole user-data blob or include body: maybe gzip, maybe MIME, maybe one part."""
        if ct.is_gzip(data):
            try:
                data = gunzip(data, self.budget)
            except (GunzipError, BudgetExceeded) as exc:
                self.problem(meta.where, str(exc))
                return
        if not data.strip():
            self.note(meta.where, "empty; nothing to do")
            return
        if mime.looks_like_mime(data):
            for leaf in mime.walk(
                data,
                meta.where,
                max_depth=self.limits.max_mime_depth,
                problem=self.problem,
                note=self.note,
            ):
                if self.stopped:
                    return
                self._isolated(leaf.where, self.mime_leaf, leaf, include_depth, chain)
            return
        self._isolated(meta.where, self.dispatch, None, data, meta, include_depth, chain)

    def _isolated(self, where: str, step: Callable[..., None], *args: Any) -> None:
        """Run one part's step; whatever breaks in it is that part's problem alone."""
        try:
            step(*args)
        except BudgetExceeded as exc:
            self.problem(where, f"{exc}; part ignored")
        except Exception as exc:
            self.problem(where, f"part could not be handled: {type(exc).__name__}: {exc}")

    def _saw(self, where: str, content_type: str | None, filename: str | None,
             size: int | None) -> None:
        self.seen[where] = (content_type, filename, size)

    def mime_leaf(self, leaf: mime.MimeLeaf, include_depth: int, chain: tuple[str, ...]) -> None:
        headers = leaf.headers
        self._saw(leaf.where, headers.get_content_type(), headers.get_filename(),
                  len(leaf.body))
        try:
            payload = mime.decode_body(headers, leaf.body)
        except mime.MimeError as exc:
            self.problem(leaf.where, f"{exc}; part ignored")
            return
        declared: str | None = headers.get_content_type()
        if declared in ct.GZIP_TYPES or ct.is_gzip(payload):
            try:
                payload = gunzip(payload, self.budget)
            except (GunzipError, BudgetExceeded) as exc:
                self.problem(leaf.where, f"{exc}; part ignored")
                return
            if declared in ct.GZIP_TYPES or declared not in _KNOWN_TYPES:
                declared = None
        merge_how = headers.get("Merge-Type") or headers.get("X-Merge-Type")
        index_header = headers.get("Launch-Index")
        meta = _Meta(
            where=leaf.where,
            filename=headers.get_filename(),
            index_header=str(index_header) if index_header is not None else None,
            merge_how=str(merge_how) if merge_how is not None else None,
        )
        self.dispatch(declared, payload, meta, include_depth, chain)

    def dispatch(
        self,
        declared: str | None,
        payload: bytes,
        meta: _Meta,
        include_depth: int,
        chain: tuple[str, ...],
        *,
        from_template: bool = False,
    ) -> None:
        if self.stopped:
            return
        self.dispatched += 1
        if self.dispatched > self.limits.max_parts:
            self.problem(
                meta.where,
                f"more than {self.limits.max_parts} parts; this and every later part is ignored",
            )
            self.stopped = True
            return
        if payload.startswith(ct.UTF8_BOM):
            payload = payload[len(ct.UTF8_BOM) :]
        content_type = declared
        if declared is None or declared in ct.UNDECLARED or declared == ct.SHELLSCRIPT:
            content_type = ct.detect(payload) or declared or "text/x-not-multipart"
        assert content_type is not None
        self._saw(meta.where, content_type, meta.filename, len(payload))
        if not payload.strip():
            self.note(meta.where, f"empty {content_type} part ignored")
            return
        if content_type in ct.INCLUDE_TYPES:
            self.include(content_type, payload, meta, include_depth, chain)
        elif content_type == ct.CLOUD_CONFIG_ARCHIVE:
            self.archive(payload, meta, include_depth, chain)
        elif content_type == ct.JINJA:
            if from_template:
                self.problem(meta.where, "a rendered template is a template again; not rendered")
                return
            self.template(payload, meta, include_depth, chain)
        elif content_type in ct.LEAF_TYPES:
            self.leaf(content_type, payload, meta)
        else:
            # A note, not a problem: as with cloud-init's warning, some clouds' users pass
            # data meant for their own software, and that must not mark the boot failed.
            self.note(
                meta.where,
                f"{content_type} content is not handled and was ignored "
                f"(starts with {_first_line(payload)!r}; user-data parts start with "
                f"#cloud-config, #!, #include, #cloud-boothook, ...)",
            )

    def leaf(self, content_type: str, payload: bytes, meta: _Meta) -> None:
        candidate = _Candidate(
            content_type, payload, meta.where, meta.filename, meta.index_header, meta.merge_how
        )
        if content_type == ct.CLOUD_CONFIG:
            if not self._load_config(candidate):
                return
        elif content_type == ct.CLOUD_CONFIG_JSONP:
            if not self._load_patch(candidate):
                return
        elif content_type == ct.BOOTHOOK:
            candidate.payload = _boothook_script(payload)
        self.candidates.append(candidate)

    def _text(self, payload: bytes, where: str) -> str | None:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = payload.count(b"\n", 0, exc.start) + 1
            self.problem(
                f"{where} line {line}",
                f"not valid UTF-8 (byte 0x{payload[exc.start]:02x} at offset {exc.start}); "
                f"part ignored",
            )
            return None

    def _load_yaml(self, text: str, where: str) -> tuple[bool, Any, dict[tuple[Any, ...], int]]:
        try:
            data, marks, nodes = load_counted(
                text,
                max_nodes=self.budget.nodes_remaining or 0,
                max_depth=self.limits.max_yaml_depth,
            )
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            at = f"{where} line {mark.line + 1} column {mark.column + 1}" if mark else where
            reason = str(exc.problem or exc)
            if exc.context and exc.context_mark is not None:
                reason += f" ({exc.context} at line {exc.context_mark.line + 1})"
            self.problem(at, f"invalid YAML: {reason}; part ignored")
            return False, None, {}
        except YamlLimitError as exc:
            self.problem(
                where, f"YAML refused: {exc} (node cap {self.budget.max_nodes}); part ignored"
            )
            return False, None, {}
        except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
            self.problem(where, f"invalid YAML: {exc}; part ignored")
            return False, None, {}
        self.budget.charge_nodes(nodes)
        return True, data, marks

    def _load_config(self, candidate: _Candidate) -> bool:
        text = self._text(candidate.payload, candidate.where)
        if text is None:
            return False
        ok, data, marks = self._load_yaml(text, candidate.where)
        if not ok:
            return False
        if data is not None and not isinstance(data, dict):
            self.problem(
                candidate.where,
                f"cloud-config must be a mapping, not a {type(data).__name__}; part ignored",
            )
            return False
        if isinstance(data, dict):
            self._drop_long_integers(data, marks, candidate.where)
        candidate.config = data
        candidate.marks = marks
        return True

    def _drop_long_integers(
        self, data: dict[str, Any], marks: dict[tuple[Any, ...], int], where: str
    ) -> None:
        """An integer Python cannot write in decimal breaks every later step that prints,
        hashes or saves the config; it alone is dropped, with a problem naming its line."""
        by_parent: dict[tuple[Any, ...], list[Any]] = {}
        for path in long_integers(data):
            line = marks.get(path)
            self.problem(
                f"{where} line {line}" if line else where,
                f"integer at {path_text(path)} has more than "
                f"{sys.get_int_max_str_digits()} digits; value ignored",
            )
            by_parent.setdefault(path[:-1], []).append(path[-1])
        # Deepest first, so removing list items never shifts a path still to be visited.
        for parent_path, keys in sorted(by_parent.items(), key=lambda kv: -len(kv[0])):
            parent: Any = data
            for key in parent_path:
                parent = parent[key]
            if isinstance(parent, list):
                first = min(keys)
                for index in sorted(keys, reverse=True):
                    del parent[index]
                # Later items moved up: their recorded lines no longer match.
                for path in [p for p in marks if _below(p, parent_path, first)]:
                    del marks[path]
            else:
                for key in keys:
                    parent.pop(key, None)

    def _load_patch(self, candidate: _Candidate) -> bool:
        text = self._text(candidate.payload, candidate.where)
        if text is None:
            return False
        body = text.lstrip()
        if body.lower().startswith("#cloud-config-jsonp"):
            # Blank out the marker but keep its line, so JSON line numbers match the part.
            skipped = len(text) - len(body)
            body = text[:skipped] + body[len("#cloud-config-jsonp") :]
        try:
            patch = json.loads(body)
        except json.JSONDecodeError as exc:
            self.problem(
                f"{candidate.where} line {exc.lineno} column {exc.colno}",
                f"invalid JSON patch: {exc.msg}; part ignored",
            )
            return False
        except RecursionError:
            self.problem(candidate.where, "invalid JSON patch: nested too deeply; part ignored")
            return False
        except ValueError as exc:  # e.g. an integer beyond Python's digit limit
            self.problem(candidate.where, f"invalid JSON patch: {exc}; part ignored")
            return False
        if not isinstance(patch, list):
            self.problem(candidate.where, "a JSON patch must be a list of operations; ignored")
            return False
        nodes, depth = value_size(patch)
        if depth > self.limits.max_yaml_depth + 2:  # the list of ops and each op's object
            self.problem(
                candidate.where,
                f"JSON patch nests deeper than {self.limits.max_yaml_depth} levels; part ignored",
            )
            return False
        try:
            self.budget.charge_nodes(nodes)
        except BudgetExceeded as exc:
            self.problem(candidate.where, f"JSON patch refused: {exc}; part ignored")
            return False
        candidate.patch = patch
        return True

    def include(
        self,
        content_type: str,
        payload: bytes,
        meta: _Meta,
        include_depth: int,
        chain: tuple[str, ...],
    ) -> None:
        text = self._text(payload, meta.where)
        if text is None:
            return
        urls = parse_include_list(text, once=content_type == ct.INCLUDE_ONCE)
        if not urls:
            self.note(meta.where, "include part lists no URLs")
        limits = self.limits
        for item in urls:
            where = f"{meta.where} include {mime.printable(item.url, 300)}"
            if self.stopped:
                return
            if not item.url.lower().startswith(("http://", "https://")):
                self.problem(where, "only http:// and https:// URLs can be included; skipped")
                continue
            if include_depth >= limits.max_include_depth:
                self.problem(
                    where, f"includes nested deeper than {limits.max_include_depth}; not fetched"
                )
                continue
            if item.url in chain:
                self.problem(where, "include loop: this URL is already being included; skipped")
                continue
            if self.includes_done >= limits.max_includes:
                self.problem(where, f"more than {limits.max_includes} includes; not fetched")
                continue
            self.includes_done += 1
            body = self._include_body(item.url, item.once, where)
            if body is None:
                continue
            self.blob(body, _Meta(where), include_depth + 1, (*chain, item.url))

    def _include_body(self, url: str, once: bool, where: str) -> bytes | None:
        if once and self.cache is not None:
            try:
                cached = self.cache.get(url)
            except OSError as exc:
                self.problem(where, f"include-once cache unreadable: {exc}")
                cached = None
            if cached is not None:
                try:
                    self.budget.charge(len(cached))
                except BudgetExceeded as exc:
                    self.problem(where, f"{exc}; include skipped")
                    return None
                self.note(where, "include-once: served from the cache, not fetched")
                return cached
        from bootseed.late.userdata.fetch import fetch

        limits = self.limits
        if self.include_deadline is None:
            self.include_deadline = TimeBudget(limits.include_total_timeout)
        with self.budget.paused():
            result = fetch(
                url,
                timeout=limits.include_timeout,
                retries=limits.include_retries,
                retry_delay=limits.include_retry_delay,
                max_bytes=self.budget.remaining,
                max_redirects=limits.include_max_redirects,
                deadline=self.include_deadline,
            )
        if result.body is None:
            self.problem(where, f"include not fetched: {result.error}")
            return None
        try:
            self.budget.charge(len(result.body))
        except BudgetExceeded as exc:
            self.problem(where, f"{exc}; include skipped")
            return None
        if once and self.cache is not None:
            try:
                self.cache.put(url, result.body)
            except OSError as exc:
                self.problem(where, f"include-once cache not written: {exc}")
        return result.body

    def archive(
        self, payload: bytes, meta: _Meta, include_depth: int, chain: tuple[str, ...]
    ) -> None:
        text = self._text(payload, meta.where)
        if text is None:
            return
        ok, items, _ = self._load_yaml(text, meta.where)
        if not ok:
            return
        if items is None:
            self.note(meta.where, "empty cloud-config-archive")
            return
        if not isinstance(items, list):
            self.problem(
                meta.where,
                f"cloud-config-archive must be a list, not a {type(items).__name__}; ignored",
            )
            return
        for number, item in enumerate(items, 1):
            if self.stopped:
                return
            self._isolated(
                f"{meta.where} item {number}",
                self._archive_item, number, item, meta, include_depth, chain,
            )

    def _archive_item(
        self, number: int, item: Any, meta: _Meta, include_depth: int, chain: tuple[str, ...]
    ) -> None:
        where = f"{meta.where} item {number}"
        if isinstance(item, str):
            item = {"content": item}
        if not isinstance(item, dict):
            self.problem(where, f"archive item is a {type(item).__name__}, not a mapping; skipped")
            return
        fields = {str(k).lower(): v for k, v in item.items()}
        filename = fields.get("filename")
        if filename is not None:
            where = f"{where} ({mime.printable(str(filename))})"
        content = fields.get("content", "")
        if isinstance(content, str):
            data = content.encode("utf-8", "surrogateescape")
        elif isinstance(content, bytes):
            data = content
        else:
            self.problem(where, f"archive item content is a {type(content).__name__}; skipped")
            return
        if ct.is_gzip(data):
            try:
                data = gunzip(data, self.budget)
            except (GunzipError, BudgetExceeded) as exc:
                self.problem(where, f"{exc}; item skipped")
                return
        declared = fields.get("type")
        if declared is not None and not isinstance(declared, str):
            self.problem(where, "archive item type is not a string; detected from content")
            declared = None
        if not declared:
            # cloud-init: an archive item without a type is cloud-config unless it says otherwise.
            declared = ct.detect(data) or ct.CLOUD_CONFIG
        index = fields.get("launch-index")
        merge_how = fields.get("merge-type", fields.get("x-merge-type"))
        item_meta = _Meta(
            where=where,
            filename=str(filename) if filename is not None else None,
            index_header=str(index) if index is not None else None,
            merge_how=str(merge_how) if merge_how is not None else None,
        )
        self.dispatch(declared.strip().lower(), data, item_meta, include_depth, chain)

    def template(
        self, payload: bytes, meta: _Meta, include_depth: int, chain: tuple[str, ...]
    ) -> None:
        from bootseed.late.userdata import template

        text = self._text(payload, meta.where)
        if text is None:
            return
        body = template.strip_header(text)
        offset = text.count("\n", 0, len(text) - len(body))
        try:
            rendered = template.render(
                body, self._template_variables(), self.budget, line_offset=offset
            )
        except template.TemplateError as exc:
            at = f"{meta.where} line {exc.line}" if exc.line else meta.where
            self.problem(at, f"{exc}; part ignored")
            return
        for name in dict.fromkeys(rendered.missing):
            self.problem(
                meta.where,
                f"template variable {name!r} is undefined; rendered as "
                f"{template.MISSING_PREFIX}{name}",
            )
        data = rendered.text.encode("utf-8", "surrogateescape")
        try:
            self.budget.charge(len(data))
        except BudgetExceeded as exc:
            self.problem(meta.where, f"{exc}; part ignored")
            return
        sub_type = ct.detect(data)
        rendered_meta = _Meta(
            f"{meta.where} (rendered)", meta.filename, meta.index_header, meta.merge_how
        )
        if sub_type not in ct.JINJA_RESULT_TYPES:
            self.problem(
                rendered_meta.where,
                f"a template must render to #cloud-config, a #! script or #cloud-boothook, "
                f"not {sub_type or repr(_first_line(data))}; ignored",
            )
            return
        self.dispatch(sub_type, data, rendered_meta, include_depth, chain, from_template=True)

    def _template_variables(self) -> dict[str, Any]:
        from bootseed.late.userdata.template import instance_variables

        if self._variables is None:
            data = self.instance_data if isinstance(self.instance_data, dict) else {}
            self._variables = instance_variables(data)
        return self._variables

    # -- filtering and merging ---------------------------------------------------------------

    def records(self, used: set[str], skipped: set[str]) -> list[PartRecord]:
        """What became of every part met; a part that failed before it could be read
        (a broken MIME entity, an include URL not fetched) is known by its problem alone."""

        # The first message about each part (at it, or at a line in it), found in one pass
        # over the problems: thousands of failed parts must stay linear.
        def first_by_part(items: list[Problem]) -> dict[str, str]:
            found: dict[str, str] = {}
            for item in items:
                for key in _part_keys(item.where):
                    found.setdefault(key, item.message)
            return found

        failures, notes = first_by_part(self.problems), first_by_part(self.notes)
        found: list[PartRecord] = []
        for where, (content_type, filename, size) in self.seen.items():
            if where in used:
                status, reason = "used", None
            elif where in skipped:
                status, reason = "skipped", notes.get(where)
            elif (failure := failures.get(where)) is not None:
                status, reason = "failed", failure
            elif (note := notes.get(where)) is not None:
                status, reason = "ignored", note
            elif content_type in _CONTAINER_TYPES:
                status, reason = "unpacked", None
            else:
                status, reason = "ignored", None
            found.append(PartRecord(where, content_type, filename, size, status, reason))
        return found

    def finish(self) -> UserDataResult:
        used: set[str] = set()
        skipped: set[str] = set()
        parts: list[Part] = []
        config: dict[str, Any] = {}
        config_t: Trace | None = Trace(self.origin, {})
        for candidate in self.candidates:
            index = self._launch_index(candidate)
            if self.launch_index is not None and index is not None and index != self.launch_index:
                self.note(
                    candidate.where,
                    f"for launch index {index}, this instance is {self.launch_index}; skipped",
                )
                skipped.add(candidate.where)
                continue
            used.add(candidate.where)
            number = len(parts) + 1
            parts.append(
                Part(
                    index=number,
                    content_type=candidate.content_type,
                    filename=_clean_filename(candidate.filename) or f"part-{number:03d}",
                    payload=candidate.payload,
                    source=candidate.where,
                    launch_index=index,
                    merge_how=candidate.merge_how,
                )
            )
            # No time check here: merging is linear in the parts, and a template that
            # spent the run's time must not cost the plain parts after it.
            try:
                if candidate.content_type == ct.CLOUD_CONFIG and isinstance(
                    candidate.config, dict
                ):
                    config, config_t = self._merge(config, config_t, candidate)
                elif candidate.content_type == ct.CLOUD_CONFIG_JSONP:
                    config, config_t = self._patch(config, config_t, candidate)
            except BudgetExceeded as exc:
                self.problem(candidate.where, f"{exc}; its config is not applied")
            except Exception as exc:
                self.problem(
                    candidate.where,
                    f"config could not be applied: {type(exc).__name__}: {exc}",
                )
        return UserDataResult(
            parts=parts,
            cloud_config=config,
            problems=self.problems,
            key_origins=flatten(config_t) if config_t is not None else {},
            notes=self.notes,
            records=self.records(used, skipped),
        )

    def _launch_index(self, candidate: _Candidate) -> int | None:
        raw: Any = candidate.index_header
        source = "Launch-Index"
        if raw is None and isinstance(candidate.config, dict):
            raw = candidate.config.get("launch-index")
            source = "launch-index"
        if raw is None:
            return None
        try:
            return int(str(raw).strip())
        except ValueError:
            self.problem(
                candidate.where,
                f"{source} {str(raw)!r} is not an integer; the part applies to every instance",
            )
            return None

    def _merge(
        self, config: dict[str, Any], config_t: Trace | None, candidate: _Candidate
    ) -> tuple[dict[str, Any], Trace | None]:
        part = dict(candidate.config)
        how = pop_merge_how(part)
        spec = []
        line = candidate.marks.get(("merge_how",)) or candidate.marks.get(("merge_type",))
        try:
            spec.extend(parse_how(how))
        except MergeSpecError as exc:
            where = f"{candidate.where} line {line}" if line else candidate.where
            self.problem(where, f"merge_how: {exc}; using the default {_default_how()}")
        try:
            spec.extend(parse_how(candidate.merge_how))
        except MergeSpecError as exc:
            self.problem(
                candidate.where, f"Merge-Type header: {exc}; using the default {_default_how()}"
            )
        mergers = Mergers.from_spec(spec) if spec else DEFAULT
        if mergers.dict_opts is None:
            self.problem(
                candidate.where,
                "merge chain has no dict() merger, so this part changes nothing (as in cloud-init)",
            )
        part_t = build(part, candidate.marks, candidate.where)
        merged, merged_t = merge_traced(config, part, mergers, config_t, part_t, self.owned)
        return (merged if isinstance(merged, dict) else config), merged_t

    def _patch(
        self, config: dict[str, Any], config_t: Trace | None, candidate: _Candidate
    ) -> tuple[dict[str, Any], Trace | None]:
        try:
            patched, patched_t = apply_patch(
                config,
                candidate.patch,
                config_t,
                candidate.where,
                budget=self.budget,
                max_depth=self.limits.max_yaml_depth,
            )
        except PatchError as exc:
            self.problem(candidate.where, f"JSON patch not applied: {exc}")
            return config, config_t
        if not isinstance(patched, dict):
            self.problem(candidate.where, "JSON patch would make the config a non-mapping; ignored")
            return config, config_t
        return patched, patched_t


_KNOWN_TYPES = ct.LEAF_TYPES | ct.INCLUDE_TYPES | {ct.CLOUD_CONFIG_ARCHIVE, ct.JINJA}
# Parts whose contents become parts of their own.
_CONTAINER_TYPES = ct.INCLUDE_TYPES | {ct.CLOUD_CONFIG_ARCHIVE, ct.JINJA, "multipart/mixed"}


def _default_how() -> str:
    from bootseed.late.userdata.merge import DEFAULT_HOW

    return DEFAULT_HOW


def _first_line(payload: bytes) -> str:
    line = payload.lstrip()[:200].split(b"\n", 1)[0]
    return mime.printable(line.decode("utf-8", "replace"), 60)


def _below(path: tuple[Any, ...], parent: tuple[Any, ...], first: int) -> bool:
    """Whether ``path`` lies in list ``parent`` at item ``first`` or later."""
    if len(path) <= len(parent) or path[: len(parent)] != parent:
        return False
    index = path[len(parent)]
    return isinstance(index, int) and index >= first


def _boothook_script(payload: bytes) -> bytes:
    """The boothook as an executable file: marker line removed, LF line ends."""
    text = payload.replace(b"\r\n", b"\n").lstrip()
    marker = b"#cloud-boothook"
    if text[: len(marker)].lower() == marker:
        text = text[len(marker) :]
    return text.lstrip()


def _clean_filename(name: str | None) -> str | None:
    """A name safe to join to a directory: no separators or control characters, <= 200 bytes."""
    if not name:
        return None
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    clean = "".join(
        "_" if ch in "/\\\0" or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") else ch
        for ch in text
    ).strip()
    encoded = clean.encode("utf-8")
    if len(encoded) > 200:
        clean = encoded[:200].decode("utf-8", "ignore")
    if clean in ("", ".", ".."):
        return None
    return clean


def _part_keys(where: str) -> list[str]:
    """The part a problem's place names: the place itself, and each prefix that a
    ``line N`` (or ``line N column M``) follows (``user-data part 2 (x.yaml) line 3``)."""
    keys = [where]
    head = where
    while " line " in head:
        head = head.rsplit(" line ", 1)[0]
        keys.append(head)
    return keys
