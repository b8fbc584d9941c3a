"""``## template: jinja`` parts, rendered with cloud-init style instance data.

``jinja2`` is imported only when a template is rendered. Undefined variables
render as ``CI_MISSING_JINJA_VAR/<name>`` (cloud-init's placeholder) and are
reported. The sandboxed environment refuses attribute access to Python
internals; loops over ``range`` share an iteration budget, ``*`` and ``**``
refuse huge results, and the output is capped by the engine's byte budget.
Templates are still code from the user-data author: a template written to
spin forever without output is as possible as a ``while true`` script.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

MISSING_PREFIX = "CI_MISSING_JINJA_VAR/"
HEADER = re.compile(r"^\s*##\s*template:\s*jinja[ \t]*(?:\r?\n|$)", re.IGNORECASE)
_MAX_RANGE_ITEMS = 1_000_000
_MAX_EXPONENT = 4096
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


def render(body: str, variables: dict[str, Any], max_bytes: int, line_offset: int = 1) -> Rendered:
    """Render ``body`` (the part without its header line); raise ``TemplateError``.

    ``line_offset`` is added to jinja's line numbers so errors name lines of
    the original part (whose first line was the header).
    """
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment, SecurityError

    missing: list[str] = []

    class Missing(jinja2.ChainableUndefined):
        def __str__(self) -> str:
            name = self._undefined_name or "?"
            missing.append(name)
            return MISSING_PREFIX + name

    used = [0]

    def bounded_range(*args: int) -> range:
        numbers = range(*args)
        used[0] += len(numbers)
        if used[0] > _MAX_RANGE_ITEMS:
            raise SecurityError(f"loops over range() exceed {_MAX_RANGE_ITEMS} items in total")
        return numbers

    class Env(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, count in ((left, right), (right, left)):
                    if (
                        isinstance(seq, (str, list, tuple))
                        and isinstance(count, int)
                        and len(seq) * count > max_bytes
                    ):
                        raise SecurityError("repetition result is larger than the size cap")
            if operator == "**" and isinstance(right, int) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"exponent larger than {_MAX_EXPONENT}")
            return super().call_binop(context, operator, left, right)

    env = Env(undefined=Missing, trim_blocks=True, extensions=["jinja2.ext.do"])
    env.globals["range"] = bounded_range
    try:
        template = env.from_string(body)
        out: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > max_bytes:
                raise TemplateError(
                    f"rendered output is larger than the remaining size budget of {max_bytes} bytes"
                )
            out.append(chunk)
    except jinja2.TemplateSyntaxError as exc:
        line = exc.lineno + line_offset if exc.lineno else None
        raise TemplateError(f"template syntax error: {exc.message}", line) from None
    except TemplateError:
        raise
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None
    except RecursionError:
        raise TemplateError("template failed: recursion too deep") from None
    return Rendered("".join(out), missing)
