"""A jinja sandbox whose every growing operation is charged against the run's budget.

Strings and lists can only grow through a few doors: the binary operators
``+ * %`` (and ``**`` for numbers), the ``~`` concatenation, filters and
method calls with a size argument (``center``, ``indent``, ``ljust``, ...),
``replace``/``join``/``format``, and the globals ``range`` and ``lipsum``.
Each door checks the size its result *would* have before building it and
refuses anything larger than the budget's remaining bytes (items for lists).
Loops that build nothing are stopped by the budget's time cap: while a
template runs, a trace hook on the template's own frames counts steps and
checks the clock every few hundred of them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from bootseed.late.userdata.budget import Budget
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_EXPONENT = 4096
MAX_RANGE_ITEMS = 1_000_000
MAX_LIPSUM_PARAGRAPHS = 100
MAX_LIPSUM_WORDS = 1000
_TEMPLATE_FILE = "<template>"
_CHECK_EVERY = 256
_NUMBER = re.compile(r"\d+")
# Filters and str methods whose integer arguments are widths or counts of the result.
_SIZE_ARGUMENTS = frozenset(
    {"center", "indent", "wordwrap", "ljust", "rjust", "zfill", "expandtabs", "batch", "slice",
     "lipsum"}
)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a size-checked join instead of jinja's plain one."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "%", "**"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, budget: Budget, **options: Any) -> None:
        super().__init__(**options)
        self.budget = budget
        self.max_bytes = budget.remaining
        # A list item costs a pointer at least; lists are held to the node cap.
        nodes = budget.nodes_remaining
        self.max_items = min(self.max_bytes, nodes) if nodes is not None else self.max_bytes
        self.range_items = 0
        for name in list(self.filters):
            self.filters[name] = self._checked(name, self.filters[name])
        self.globals["range"] = self.bounded_range
        self.globals["lipsum"] = self._checked("lipsum", self.bounded_lipsum)

    # -- the doors ---------------------------------------------------------------------------

    def _refuse(self, what: str, size: int, sample: Any = "") -> None:
        """Refuse ``size`` bytes (``sample`` a string) or items (a list or tuple)."""
        if isinstance(sample, (list, tuple)):
            if size > self.max_items:
                raise SecurityError(
                    f"{what} would make a list of {size} items, past the size cap "
                    f"({self.max_items} items left of the run's budget)"
                )
        elif size > self.max_bytes:
            raise SecurityError(
                f"{what} would make {size} bytes, past the size cap "
                f"({self.max_bytes} left of the run's budget)"
            )

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "+" and _sized(left) and _sized(right):
            self._refuse("'+'", len(left) + len(right), left)
        elif operator == "*":
            for seq, count in ((left, right), (right, left)):
                if _sized(seq) and isinstance(count, int):
                    self._refuse("'*'", len(seq) * count, seq)
        elif operator == "%" and isinstance(left, str):
            self._refuse("'%' formatting", _format_size(left, right))
        elif operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent larger than {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)

    def bounded_concat(self, items: tuple[Any, ...]) -> str:
        texts = [str(item) for item in items]
        self._refuse("'~'", sum(len(t) for t in texts))
        return "".join(texts)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, list)):
            name = getattr(__obj, "__name__", "")
            __self._check(f"method .{name}()", name, owner, args, kwargs)
        return SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)

    def _checked(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        pass_arg = getattr(func, "jinja_pass_arg", None)

        def checked(*args: Any, **kwargs: Any) -> Any:
            # A filter asking for the context/environment gets it first, then its value.
            values = args[1:] if pass_arg is not None else args
            subject = values[0] if values else None
            self._check(f"filter {name!r}", name, subject, values[1:], kwargs)
            return func(*args, **kwargs)

        if pass_arg is not None:
            checked.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
        return checked

    def _check(
        self, what: str, name: str, subject: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Refuse a filter or method call whose result would pass the budget."""
        values = [*args, *kwargs.values()]
        numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        texts = [v for v in values if isinstance(v, str)]
        if name in _SIZE_ARGUMENTS:
            lines = subject.count("\n") + 1 if isinstance(subject, str) else 1
            length = len(subject) if _sized(subject) else 0
            self._refuse(what, length + lines * max(numbers, default=0))
        elif name == "replace" and isinstance(subject, str) and len(texts) >= 2:
            old, new = texts[0], texts[1]
            hits = len(subject) + 1 if not old else subject.count(old)
            self._refuse(what, len(subject) + hits * max(0, len(new) - len(old)))
        elif name == "join" and isinstance(subject, str) and args:
            # str.join: the subject is the separator, the argument the items.
            items = [str(v) for v in args[0]]
            self._refuse(what, sum(map(len, items)) + len(subject) * max(0, len(items) - 1))
        elif name == "join" and subject is not None and not isinstance(subject, str):
            items = [str(v) for v in subject]
            separator = texts[0] if texts else ""
            self._refuse(what, sum(map(len, items)) + len(separator) * max(0, len(items) - 1))
        elif name == "extend" and isinstance(subject, list) and args and _sized(args[0]):
            self._refuse(what, len(subject) + len(args[0]), subject)
        elif name in ("format", "format_map") and isinstance(subject, str):
            self._refuse(what, _format_size(subject, values))

    def bounded_range(self, *args: int) -> range:
        numbers = range(*args)
        self.range_items += len(numbers)
        if self.range_items > MAX_RANGE_ITEMS:
            raise SecurityError(f"loops over range() exceed {MAX_RANGE_ITEMS} items in total")
        return numbers

    def bounded_lipsum(
        self, n: int = 5, html: bool = True, min: int = 20, max: int = 100
    ) -> str:
        """jinja's lipsum() (argument names as there), limited in size."""
        from jinja2.utils import generate_lorem_ipsum

        if n > MAX_LIPSUM_PARAGRAPHS or max > MAX_LIPSUM_WORDS:
            raise SecurityError(
                f"lipsum() is limited to {MAX_LIPSUM_PARAGRAPHS} paragraphs of at most "
                f"{MAX_LIPSUM_WORDS} words"
            )
        return str(generate_lorem_ipsum(n, html, min, max))

    # -- steps and time ----------------------------------------------------------------------

    @contextmanager
    def steps_bounded(self) -> Iterator[None]:
        """While inside, every few hundred steps of template code check the time cap."""
        budget = self.budget
        steps = [0]

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            steps[0] += 1
            if steps[0] % _CHECK_EVERY == 0:
                budget.check_time()
            return local

        def calls(frame: FrameType, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename == _TEMPLATE_FILE:
                return local
            return None

        previous = sys.gettrace()
        sys.settrace(calls)
        try:
            yield
        finally:
            sys.settrace(previous)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, list, tuple))


def _format_size(text: str, args: Any) -> int:
    """An upper bound for ``text % args`` / ``text.format(*args)``: the text, every
    argument's text, and every number in the text taken as a width."""
    values = args if isinstance(args, (tuple, list)) else [args]
    size = len(text) + sum(int(n) for n in _NUMBER.findall(text) if len(n) < 20)
    if any(len(n) >= 20 for n in _NUMBER.findall(text)):
        return sys.maxsize
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            size += abs(value) if "*" in text else 0
        size += len(str(value)) if _sized(value) or isinstance(value, dict) else 32
    return size
