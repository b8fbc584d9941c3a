"""Bounded HTTP(S) download of one ``#include`` URL.

``requests`` is imported here, on the first include actually fetched, never at
engine import. Every attempt is capped in time (connect/read timeout and a
wall-clock deadline for the body, so a server trickling one byte at a time
cannot hold the boot) and in size (the engine's remaining byte budget); the
number of attempts and redirects is capped too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

_CHUNK = 64 * 1024
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass
class FetchResult:
    body: bytes | None
    error: str | None
    attempts: int


class _Retryable(Exception):
    pass


class _Fatal(Exception):
    pass


def fetch(
    url: str,
    *,
    timeout: float,
    retries: int,
    retry_delay: float,
    max_bytes: int,
    max_redirects: int,
) -> FetchResult:
    """Download ``url``; never raises. ``error`` is a one-line reason when it failed."""
    import requests
    import urllib3.exceptions

    session = requests.Session()
    session.max_redirects = max_redirects
    attempts = 0
    last_error = "not attempted"
    try:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(retry_delay)
            attempts += 1
            try:
                return FetchResult(_attempt(session, url, timeout, max_bytes), None, attempts)
            except _Fatal as exc:
                return FetchResult(None, str(exc), attempts)
            except _Retryable as exc:
                last_error = str(exc)
            except requests.exceptions.TooManyRedirects:
                return FetchResult(None, f"more than {max_redirects} redirects", attempts)
            except requests.exceptions.InvalidSchema as exc:
                return FetchResult(None, f"unsupported redirect target: {exc}", attempts)
            except (
                requests.exceptions.Timeout,
                urllib3.exceptions.TimeoutError,
                TimeoutError,
            ):
                last_error = f"timed out after {timeout:g} s"
            except requests.exceptions.ConnectionError as exc:
                last_error = f"connection failed: {_reason(exc)}"
            except urllib3.exceptions.HTTPError as exc:
                last_error = f"transfer failed: {_reason(exc)}"
            except requests.exceptions.RequestException as exc:
                return FetchResult(None, f"request failed: {_reason(exc)}", attempts)
            except OSError as exc:
                last_error = f"I/O error: {exc}"
    finally:
        session.close()
    return FetchResult(None, f"{last_error} (after {attempts} attempts)", attempts)


def _attempt(session: Any, url: str, timeout: float, max_bytes: int) -> bytes:
    deadline = time.monotonic() + timeout
    # identity: a compressed body is inflated by the engine's bounded gunzip,
    # never by the HTTP stack without a size cap.
    headers = {"Accept-Encoding": "identity", "User-Agent": "bootseed-userdata"}
    with session.get(url, timeout=(timeout, timeout), stream=True, headers=headers) as resp:
        status = resp.status_code
        if status in _RETRY_STATUS:
            raise _Retryable(f"HTTP {status} {resp.reason or ''}".rstrip())
        if not 200 <= status < 300:
            raise _Fatal(f"HTTP {status} {resp.reason or ''}".rstrip())
        encoding = (resp.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            raise _Fatal(f"unsupported Content-Encoding {encoding!r}")
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise _Fatal(
                f"body of {declared} bytes is larger than the remaining size budget "
                f"of {max_bytes} bytes"
            )
        read = _reader(resp)
        chunks: list[bytes] = []
        total = 0
        while True:
            if time.monotonic() > deadline:
                raise _Retryable(f"download did not finish within {timeout:g} s")
            chunk = read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise _Fatal(f"body is larger than the remaining size budget of {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _reader(resp: Any) -> Any:
    """A ``read1``-style reader: returns as soon as any bytes arrived.

    A plain ``read(n)`` blocks until ``n`` bytes came, which a trickling server
    can stretch without limit; ``read1`` lets the deadline be checked per chunk.
    Content decoding stays off (see ``Accept-Encoding`` above).
    """
    raw = resp.raw
    if hasattr(raw, "read1"):
        return lambda size: raw.read1(size, decode_content=False)
    # urllib3 1.x: the http.client response underneath has read1.
    return raw._fp.read1


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
