"""Bounded HTTP(S) download of one ``#include`` URL.

It uses the early stage's client (:mod:`bootseed.early.http`), the one bounded
HTTP client of bootseed: every attempt has a wall-clock deadline that covers
connect, status line, headers and body, so a server trickling any of them a
byte at a time cannot hold the boot. On top of that every include of one
user-data run shares one time budget (``deadline``), the number of attempts
and redirects is capped, and the size is capped by the engine's remaining byte
budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootseed.early.budget import Budget
from bootseed.early.http import FetchError, request

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_KINDS = frozenset({"refused", "connect", "timeout", "reset", "protocol"})
_ACCEPTED_ENCODINGS = ("identity", "gzip", "x-gzip")


@dataclass
class FetchResult:
    body: bytes | None
    error: str | None
    attempts: int


def fetch(
    url: str,
    *,
    timeout: float,
    retries: int,
    retry_delay: float,
    max_bytes: int,
    max_redirects: int,
    deadline: Budget | None = None,
) -> FetchResult:
    """Download ``url``; never raises. ``error`` is a one-line reason when it failed.

    ``deadline`` is the time budget shared by all includes of a run; an attempt
    never outlives it and no retry starts once it is used up.
    """
    budget = deadline if deadline is not None else Budget((timeout + retry_delay) * (retries + 1))
    attempts = 0
    last_error = "not attempted"
    for attempt in range(retries + 1):
        if attempt and not budget.sleep(retry_delay):
            return FetchResult(None, _out_of_time(budget, last_error, attempts), attempts)
        wait = budget.cap(timeout)
        if wait <= 0:
            return FetchResult(None, _out_of_time(budget, last_error, attempts), attempts)
        attempts += 1
        try:
            resp = request(
                url,
                timeout=wait,
                max_bytes=max_bytes,
                max_redirects=max_redirects,
                headers={"User-Agent": "bootseed-userdata"},
            )
        except FetchError as exc:
            reason = _describe(exc, wait, max_bytes, max_redirects)
            if exc.kind not in _RETRY_KINDS:
                return FetchResult(None, reason, attempts)
            last_error = reason
            continue
        status_line = f"HTTP {resp.status} {resp.reason}".rstrip()
        if resp.status in _RETRY_STATUS:
            last_error = status_line
            continue
        if not 200 <= resp.status < 300:
            return FetchResult(None, status_line, attempts)
        encoding = (resp.header("content-encoding") or "identity").strip().lower()
        if encoding not in _ACCEPTED_ENCODINGS:
            # A compressed body is inflated by the engine's bounded gunzip, never
            # by the HTTP stack; anything else cannot be read at all.
            return FetchResult(None, f"unsupported Content-Encoding {encoding!r}", attempts)
        return FetchResult(resp.body, None, attempts)
    return FetchResult(None, f"{last_error} (after {attempts} attempts)", attempts)


def _describe(exc: FetchError, timeout: float, max_bytes: int, max_redirects: int) -> str:
    if exc.kind == "timeout":
        return f"timed out: the download did not finish within {timeout:g} s"
    if exc.kind == "too-large":
        return f"body is larger than the remaining size budget of {max_bytes} bytes"
    if exc.kind == "redirect":
        return exc.message
    if exc.kind in ("refused", "connect"):
        return f"connection failed: {exc.message}"
    return f"transfer failed: {_short(exc.message)}"


def _out_of_time(budget: Budget, last_error: str, attempts: int) -> str:
    spent = f"the include time budget of {budget.seconds:g} s is used up"
    if attempts:
        return f"{last_error}; {spent} (after {attempts} attempts)"
    return spent


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."
