"""Make a YAML-loaded value JSON-serialisable without losing information silently.

Safe YAML yields dates, timestamps, bytes (``!!binary``), sets, non-string
keys and the floats ``.nan``/``.inf``; JSON has none of these, so each gets
its nearest JSON spelling (``nan``, ``inf`` and ``-inf`` become strings).
"""

from __future__ import annotations

import base64
import datetime
import math
from typing import Any


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [jsonable(v) for v in sorted(value, key=repr)]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _key(key: Any) -> str | int | float | bool | None:
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    converted = jsonable(key)
    return converted if isinstance(converted, str) else str(converted)
