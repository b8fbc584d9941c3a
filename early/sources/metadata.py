"""Parse NoCloud ``meta-data`` without PyYAML, and normalise metadata keys.

The early stage is standard-library only, so meta-data (JSON or YAML) is read
by a small parser for the YAML people write in seed files: block mappings and
lists, plain and quoted scalars, ``|``/``>`` blocks, and JSON-style flow
values. Anything beyond that is handed to PyYAML when it is importable (the
late agent), through the same bounded loader the user-data engine uses
(``contract.boundedyaml``: node count, depth and aliases checked before
anything is built), and otherwise reported with its line number. Whatever
is wrong with the input (too deep, too big, an integer past Python's digit
limit) is a ``MetadataError``, never another exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class MetadataError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class _Line:
    number: int
    indent: int
    text: str


_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")


def parse_meta_data(data: bytes) -> dict[str, Any]:
    """A mapping from JSON or simple YAML; empty input is an empty mapping."""
    text = data.decode("utf-8-sig")
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise MetadataError(exc.lineno, f"invalid JSON: {exc.msg}") from exc
        except RecursionError:
            raise MetadataError(1, "invalid JSON: nested too deeply") from None
        except ValueError as exc:  # an integer beyond Python's digit limit
            raise MetadataError(1, f"invalid JSON: {exc}") from None
    else:
        try:
            value = parse_simple_yaml(text)
        except MetadataError as exc:
            value = _pyyaml_or_raise(text, exc)
        except (RecursionError, ValueError):
            value = _pyyaml_or_raise(text, MetadataError(1, "beyond the simple YAML parser"))
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetadataError(1, f"expected a mapping at the top, got {type(value).__name__}")
    return value


def _pyyaml_or_raise(text: str, simple_error: MetadataError) -> Any:
    try:
        import yaml
        from bootseed.early.boundedyaml import YamlLimitError, load_bounded
    except ImportError:
        raise simple_error from None
    try:
        return load_bounded(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise MetadataError(line, f"invalid YAML: {exc}") from exc
    except YamlLimitError as exc:
        raise MetadataError(simple_error.line, f"YAML refused: {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise MetadataError(simple_error.line, f"invalid YAML: {exc}") from None


def parse_simple_yaml(text: str) -> Any:
    lines: list[_Line] = []
    raw_lines = text.splitlines()
    for number, raw in enumerate(raw_lines, 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise MetadataError(number, "tab in indentation")
        body = raw.strip()
        if not body or body.startswith("#") or body in ("---", "..."):
            lines.append(_Line(number, -1, raw))  # kept for block scalars
            continue
        lines.append(_Line(number, len(raw) - len(raw.lstrip(" ")), raw.strip()))
    parser = _Parser(lines)
    value = parser.block(parser.next_indent())
    leftover = parser.peek()
    if leftover is not None:
        raise MetadataError(leftover.number, "unexpected indentation")
    return value


class _Parser:
    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines
        self.pos = 0

    def peek(self) -> _Line | None:
        while self.pos < len(self.lines) and self.lines[self.pos].indent < 0:
            self.pos += 1
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def next_indent(self) -> int:
        line = self.peek()
        return line.indent if line else 0

    def block(self, indent: int) -> Any:
        line = self.peek()
        if line is None:
            return None
        if line.text == "-" or line.text.startswith("- "):
            return self.sequence(indent)
        return self.mapping(indent)

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while (line := self.peek()) is not None and line.indent == indent and (
                line.text == "-" or line.text.startswith("- ")):
            rest = line.text[1:].strip()
            if not rest:
                self.pos += 1
                nxt = self.peek()
                items.append(self.block(nxt.indent) if nxt and nxt.indent > indent else None)
            elif _mapping_key(rest) is not None:
                # "- key: value" starts a mapping indented past the dash.
                inner = indent + 2
                self.lines[self.pos] = _Line(line.number, inner, rest)
                items.append(self.mapping(inner))
            else:
                self.pos += 1
                items.append(_scalar(rest, line.number))
        return items

    def mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while (line := self.peek()) is not None and line.indent == indent:
            if line.text.startswith("- ") or line.text == "-":
                break
            split = _mapping_key(line.text)
            if split is None:
                raise MetadataError(line.number, f"expected 'key: value', got {line.text!r}")
            key, rest = split
            self.pos += 1
            if rest in ("|", "|-", "|+", ">", ">-", ">+"):
                result[key] = self.block_scalar(indent, rest)
            elif rest:
                result[key] = _scalar(rest, line.number)
            else:
                nxt = self.peek()
                if nxt is not None and nxt.indent > indent:
                    result[key] = self.block(nxt.indent)
                elif nxt is not None and nxt.indent == indent and (
                        nxt.text.startswith("- ") or nxt.text == "-"):
                    result[key] = self.sequence(indent)
                else:
                    result[key] = None
        return result

    def block_scalar(self, indent: int, style: str) -> str:
        collected: list[str] = []
        block_indent: int | None = None
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            raw = line.text if line.indent < 0 else " " * line.indent + line.text
            current = len(raw) - len(raw.lstrip(" "))
            if raw.strip() and current <= indent:
                break
            if raw.strip() and block_indent is None:
                block_indent = current
            collected.append(raw[block_indent or 0:] if raw.strip() else "")
            self.pos += 1
        while collected and not collected[-1]:
            collected.pop()
        if style.startswith(">"):
            text = " ".join(part for part in collected if part)
        else:
            text = "\n".join(collected)
        return text if style.endswith("-") else text + "\n"


def _mapping_key(text: str) -> tuple[str, str] | None:
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0 or not text[end + 1 :].startswith(":"):
            return None
        rest = text[end + 2 :]
        if rest and not rest.startswith(" "):
            return None
        return text[1:end], _strip_comment(rest.strip())
    match = re.match(r"([^\s:#][^:]*?)\s*:(\s+|$)(.*)\Z", text)
    if match is None:
        return None
    return match.group(1), _strip_comment(match.group(3).strip())


def _strip_comment(text: str) -> str:
    if text[:1] in ("'", '"', "[", "{"):
        return text
    cut = text.find(" #")
    return text[:cut].rstrip() if cut >= 0 else text


def _scalar(text: str, number: int) -> Any:
    if text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise MetadataError(number, "flow collection beyond the JSON subset") from None
    if text.startswith('"'):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise MetadataError(number, "bad double-quoted string") from None
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise MetadataError(number, "unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text[:1] in ("&", "*", "!", "%", "@", "`"):
        raise MetadataError(number, f"YAML feature not supported here: {text[:1]!r}")
    lowered = text.lower()
    if lowered in ("null", "~"):
        return None
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def public_keys(value: Any) -> list[str]:
    """Every SSH key in whatever shape a source gives them: a string (one key per
    line), a list, or a mapping (name -> key, or EC2's index -> {openssh-key})."""
    keys: list[str] = []
    if isinstance(value, str):
        for line in value.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                keys.append(line)
    elif isinstance(value, list):
        for item in value:
            keys.extend(public_keys(item))
    elif isinstance(value, dict):
        for name in sorted(value, key=str):
            keys.extend(public_keys(value[name]))
    return keys


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Source keys kept as they are, plus the normalised ones every consumer reads."""
    out = {k: v for k, v in raw.items() if isinstance(k, str)}
    iid = raw.get("instance-id", raw.get("instance_id"))
    if iid is not None and iid != "":
        out["instance-id"] = str(iid)
    host = raw.get("local-hostname", raw.get("hostname"))
    if host:
        out["local-hostname"] = str(host)
    keys = public_keys(raw.get("public-keys", raw.get("public_keys")))
    out.pop("public_keys", None)
    out["public-keys"] = keys
    index = raw.get("launch-index", raw.get("ami-launch-index"))
    if index is not None:
        try:
            out["launch-index"] = int(index)
        except (TypeError, ValueError):
            out.pop("launch-index", None)
    return out
