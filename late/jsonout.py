"""JSON text every strict parser reads: what the CLI prints and the status files hold.

``json.dumps`` writes ``NaN`` and ``Infinity`` for non-finite floats (YAML's
``.nan``/``.inf`` in user-data or meta-data), which is not JSON. Values go
through ``jsonable`` first (non-finite floats become strings, dates ISO text,
bytes base64, ...) and are written with ``allow_nan=False``, so nothing
invalid can slip out.
"""

from __future__ import annotations

import json
from typing import IO, Any

from bootseed.late.userdata.jsonsafe import jsonable


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` options (``indent``, ``sort_keys``, ...) apply as usual."""
    return json.dumps(jsonable(value), allow_nan=False, **options)


def dump(value: Any, stream: IO[str], **options: Any) -> None:
    stream.write(dumps(value, **options))
