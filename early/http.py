"""Bounded HTTP(S) and file fetches on the standard library.

Every request has a hard deadline enforced by a watchdog that shuts the socket
down, so a server that drips headers or body a byte at a time cannot hold the
boot: socket timeouts alone only bound each ``recv``. Bodies have a size cap,
redirects a count and a loop check, and retries back off inside a budget.
Proxies from the environment are deliberately ignored: metadata services are
link-local and must never be asked through a proxy.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootseed.early.budget import Budget

if TYPE_CHECKING:
    import socket

# http.client, ssl and socket are imported when a request is made: they cost
# ~20 ms, which the no-network boot path (no remote seed) must not pay.

DEFAULT_MAX_BYTES = 1024 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
USER_AGENT = "bootseed-early/1"
Log = Callable[[str], None]


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FetchError(Exception):
    """A request that produced no usable response.

    ``kind`` is one of: bad-url, refused, connect, timeout, reset, protocol,
    tls, too-large, redirect, io, http (a retryable status that never went
    away), budget.
    """

    def __init__(self, url: str, kind: str, message: str, status: int | None = None,
                 history: Iterable[str] = ()) -> None:
        self.url = url
        self.kind = kind
        self.status = status
        self.history = list(history)
        detail = f"{message} (earlier attempts: {'; '.join(self.history)})" if self.history \
            else message
        super().__init__(f"{url}: {detail}")
        self.message = message


def is_local(url: str) -> bool:
    """True for ``file://`` URLs and plain paths (NoCloud ``s=/path/``)."""
    scheme = urllib.parse.urlsplit(url).scheme
    return scheme in ("", "file")


def request(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
    budget: Budget | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = 3,
    data: bytes | None = None,
) -> Response:
    """One request (following redirects) that answers with any HTTP status.

    Transport failures raise :class:`FetchError`; a 404 or 500 is a Response.
    Local paths answer 200 or 404 so callers treat both kinds of seed URL alike.
    """
    start = time.monotonic()
    if is_local(url):
        return _read_local(url, max_bytes, start)
    visited: list[str] = []
    current = url
    current_method = method
    while True:
        wait = budget.cap(timeout) if budget is not None else timeout
        if wait <= 0:
            raise FetchError(current, "budget", "no time left in the budget for this request")
        resp = _http_once(current, current_method, headers or {}, wait, max_bytes, data)
        location = resp.header("location")
        if resp.status not in REDIRECT_STATUSES or not location:
            resp.elapsed = time.monotonic() - start
            return resp
        visited.append(current)
        target = urllib.parse.urljoin(current, location)
        if target in visited:
            raise FetchError(url, "redirect", f"redirect loop via {target}")
        if len(visited) > max_redirects:
            raise FetchError(url, "redirect", f"more than {max_redirects} redirects")
        if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
            raise FetchError(url, "redirect", f"redirect to unsupported URL {target}")
        if resp.status == 303:
            current_method, data = "GET", None
        current = target


def fetch(
    url: str,
    *,
    budget: Budget,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 2.0,
    attempts: int = 3,
    backoff: float = 0.25,
    max_bytes: int = DEFAULT_MAX_BYTES,
    data: bytes | None = None,
    log: Log | None = None,
) -> Response:
    """:func:`request` with bounded retries on transport errors, 5xx and 429.

    Backoff doubles per attempt and is charged to ``budget``; a 4xx or 2xx ends
    the loop at once. Raises FetchError naming every failed attempt.
    """
    history: list[str] = []
    delay = backoff
    last: FetchError | None = None
    for attempt in range(1, attempts + 1):
        try:
            resp = request(url, method=method, headers=headers, timeout=timeout, budget=budget,
                           max_bytes=max_bytes, data=data)
        except FetchError as exc:
            if exc.kind in ("bad-url", "too-large", "redirect", "budget", "io", "tls"):
                raise FetchError(url, exc.kind, exc.message, exc.status, history) from exc
            last = exc
            note = exc.message
        else:
            if not (resp.status >= 500 or resp.status == 429):
                return resp
            note = f"HTTP {resp.status}"
            last = FetchError(url, "http", note, resp.status)
        if log is not None:
            log(f"{method} {url}: attempt {attempt}/{attempts} failed: {note}")
        if attempt == attempts:
            break
        history.append(note)
        if not budget.sleep(delay):
            history_note = "no time left in the budget to retry"
            raise FetchError(url, last.kind, f"{last.message}; {history_note}", last.status,
                             history[:-1])
        delay *= 2
    assert last is not None
    raise FetchError(url, last.kind, last.message, last.status, history)


def _read_local(url: str, max_bytes: int, start: float) -> Response:
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path) if parts.scheme == "file" else url
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise FetchError(url, "too-large", f"{size} bytes, limit {max_bytes}")
        with open(path, "rb") as handle:
            body = handle.read(max_bytes + 1)
    except (FileNotFoundError, NotADirectoryError):
        return Response(url, 404, {}, b"", time.monotonic() - start)
    except IsADirectoryError:
        raise FetchError(url, "io", "is a directory, not a file") from None
    except OSError as exc:
        raise FetchError(url, "io", exc.strerror or str(exc)) from exc
    if len(body) > max_bytes:
        raise FetchError(url, "too-large", f"more than {max_bytes} bytes")
    return Response(url, 200, {}, body, time.monotonic() - start)


class _Watchdog:
    """Shuts a connection's socket down at the deadline so a blocked read returns.

    It holds the socket's file descriptor from the moment the socket is created,
    not the connection's ``sock`` attribute: ``http.client`` drops that attribute
    once the response owns the socket, and TLS wraps the socket into a new object
    on the same descriptor. So one deadline covers connect, TLS handshake, status
    line, headers and body alike.
    """

    def __init__(self) -> None:
        self.fired = False
        self._fd: int | None = None
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def start(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, fd: int) -> None:
        with self._lock:
            self._fd = fd
            late = self.fired
        if late:
            self._shutdown(fd)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            fd = self._fd
            if fd is not None:
                self._shutdown(fd)

    @staticmethod
    def _shutdown(fd: int) -> None:
        import socket

        # A duplicate descriptor shuts down the same socket without taking
        # ownership of the original.
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()

    def cancel(self) -> None:
        """After this returns the watchdog never touches the descriptor again."""
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()


def _http_once(url: str, method: str, headers: dict[str, str], timeout: float, max_bytes: int,
               data: bytes | None) -> Response:
    """One exchange, all of it (connect to last body byte) within ``timeout`` seconds."""
    import http.client
    import ssl

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "bad-url", "not an http, https or file URL")
    try:
        # Always explicit: given no port, http.client would read the tail of an
        # IPv6 literal ("fd00:ec2::254") as one.
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError(url, "bad-url", str(exc)) from exc
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    send_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
    if data is not None or method in ("PUT", "POST"):
        send_headers.setdefault("Content-Length", str(len(data or b"")))
    dog = _Watchdog()
    connect = conn._create_connection  # type: ignore[attr-defined]

    def watched_connect(*args: Any, **kwargs: Any) -> socket.socket:
        sock: socket.socket = connect(*args, **kwargs)
        dog.watch(sock.fileno())
        return sock

    conn._create_connection = watched_connect  # type: ignore[attr-defined]
    dog.start(timeout)
    try:
        conn.request(method, target, body=data, headers=send_headers)
        raw = conn.getresponse()
        length = raw.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise FetchError(url, "too-large", f"Content-Length {length} exceeds {max_bytes}")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = raw.read1(65536) if method != "HEAD" else b""
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(url, "too-large", f"body exceeds {max_bytes} bytes")
            chunks.append(chunk)
        if dog.fired:
            raise FetchError(url, "timeout", f"no complete answer within {timeout:.1f}s")
        resp_headers = {k.lower(): v for k, v in raw.getheaders()}
        return Response(url, raw.status, resp_headers, b"".join(chunks), reason=raw.reason or "")
    except FetchError:
        raise
    except Exception as exc:
        raise _classify(url, exc, dog.fired, timeout) from exc
    finally:
        dog.cancel()
        conn.close()


def _classify(url: str, exc: Exception, fired: bool, timeout: float) -> FetchError:
    import http.client
    import socket
    import ssl

    if fired or isinstance(exc, TimeoutError | socket.timeout):
        return FetchError(url, "timeout", f"no complete answer within {timeout:.1f}s")
    if isinstance(exc, ConnectionRefusedError):
        return FetchError(url, "refused", "connection refused")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected
                  | http.client.IncompleteRead):
        return FetchError(url, "reset", f"connection reset or closed early ({exc!r})")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return FetchError(url, "tls", f"TLS failure: {exc}")
    if isinstance(exc, http.client.HTTPException):
        return FetchError(url, "protocol", f"bad HTTP answer: {exc!r}")
    if isinstance(exc, OSError):
        return FetchError(url, "connect", exc.strerror or repr(exc))
    return FetchError(url, "protocol", repr(exc))
