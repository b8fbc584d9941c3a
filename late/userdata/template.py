"""``## template: jinja`` parts, rendered with cloud-init style instance data.

``jinja2`` is imported only when a template is rendered. Undefined variables
render as ``CI_MISSING_JINJA_VAR/<name>`` (cloud-init's placeholder) and are
reported. The sandboxed environment refuses attribute access to Python
internals, and every operation that grows a string or list, every loop and
the output are bounded by the engine run's budget (``templatebounds``): a
template that would grow past the bytes left or run past the time cap stops
with a ``TemplateError`` instead of hanging or exhausting memory.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from bootseed.late.userdata.budget import Budget, BudgetExceeded

MISSING_PREFIX = "CI_MISSING_JINJA_VAR/"
HEADER = re.compile(r"^\s*##\s*template:\s*jinja[ \t]*(?:\r?\n|$)", re.IGNORECASE)
_NON_IDENT = re.compile(r"[^0-9A-Za-z_]")
_VERSION_KEY = re.compile(r"v\d+$")


class TemplateError(ValueError):
    """The template could not be rendered; ``line`` is 1-based in the part, if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Rendered:
    text: str
    missing: list[str]


def strip_header(text: str) -> str:
    match = HEADER.match(text)
    return text[match.end() :] if match else text


def instance_variables(instance_data: dict[str, Any]) -> dict[str, Any]:
    """Variables for templates from an ``instance-data.json`` shaped dict.

    As cloud-init: keys listed in ``base64_encoded_keys`` (``a/b`` paths) are
    decoded, the keys of ``v1`` (any ``vN``) are also available at the top
    level, and a key with characters jinja cannot name (``-``, ``.``) gets an
    alias with ``_`` in their place (``ds.meta_data`` for ``ds["meta-data"]``).
    """
    encoded = instance_data.get("base64_encoded_keys") or instance_data.get("base64-encoded-keys")
    paths = {str(p).replace("-", "_") for p in encoded} if isinstance(encoded, list) else set()
    return _convert(instance_data, "", paths)


def _convert(data: dict[str, Any], prefix: str, encoded: set[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key in sorted(data, key=str):
        value = data[key]
        name = str(key)
        path = f"{prefix}/{name}" if prefix else name
        if path in encoded and isinstance(value, str):
            value = _b64(value)
        if isinstance(value, dict):
            result[name] = _convert(value, path, encoded)
            if _VERSION_KEY.match(name):
                for sub_key, sub_value in result[name].items():
                    result[sub_key] = sub_value
        else:
            result[name] = value
        alias = _NON_IDENT.sub("_", name)
        if alias != name:
            result[alias] = result[name]
    return result


def _b64(text: str) -> str | bytes:
    try:
        raw = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def render(body: str, variables: dict[str, Any], budget: Budget, line_offset: int = 1) -> Rendered:
    """Render ``body`` (the part without its header line); raise ``TemplateError``.

    Every growing operation and the output are checked against ``budget``'s
    remaining bytes, loops against its time cap (``templatebounds``); the
    caller charges the output. ``line_offset`` is added to jinja's line numbers
    so errors name lines of the original part (whose first line was the header).
    """
    import jinja2
    from bootseed.late.userdata.templatebounds import BoundedEnvironment

    missing: list[str] = []
    max_bytes = budget.remaining

    class Missing(jinja2.ChainableUndefined):
        def __str__(self) -> str:
            name = self._undefined_name or "?"
            missing.append(name)
            return MISSING_PREFIX + name

    env = BoundedEnvironment(
        budget, undefined=Missing, trim_blocks=True, extensions=["jinja2.ext.do"]
    )
    try:
        template = env.from_string(body)
        out: list[str] = []
        size = 0
        with env.steps_bounded():
            for chunk in template.generate(**variables):
                size += len(chunk)
                if size > max_bytes:
                    raise TemplateError(
                        f"rendered output is larger than the remaining size budget of "
                        f"{max_bytes} bytes"
                    )
                out.append(chunk)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno + line_offset if exc.lineno else None
        raise TemplateError(f"template syntax error: {exc.message}", line) from None
    except TemplateError:
        raise
    except BudgetExceeded as exc:
        raise TemplateError(f"template stopped: {exc}") from None
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise TemplateError("template failed: recursion too deep") from None
    except MemoryError:
        raise TemplateError("template failed: out of memory") from None
    return Rendered("".join(out), missing)
