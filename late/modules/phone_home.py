"""``phone_home``: tell a URL that this instance is up, with its id, names and host keys.

Every network wait is bounded: at most ``MAX_TRIES`` attempts, each with a request
timeout, a pause between them, and an overall deadline.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from bootseed.late.hostnames import HostnameError, choose
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.sshkeys import public_path

DEFAULT_TRIES = 10
MAX_TRIES = 20
REQUEST_TIMEOUT = 10.0
RETRY_DELAY = 3.0
TOTAL_DEADLINE = 120.0
MISSING = "N/A"
# cloud-init also posts pub_key_dsa; OpenSSH 9.2 has no DSA host keys, so it is always N/A.
NO_KEY_FILE = ("pub_key_dsa",)
KEY_FILES = {
    "pub_key_rsa": "rsa",
    "pub_key_ecdsa": "ecdsa",
    "pub_key_ed25519": "ed25519",
}
POSTABLE = ("pub_key_dsa", "pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id",
            "hostname", "fqdn")

SCHEMA: dict[str, Any] = {
    "properties": {
        "phone_home": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "post": {
                    "oneOf": [
                        {"type": "string", "enum": ["all"]},
                        {"type": "array", "items": {"type": "string", "enum": list(POSTABLE)}},
                    ]
                },
                "tries": {"type": "integer", "minimum": 1},
            },
            "required": ["url"],
        }
    }
}


class PhoneHomeError(RuntimeError):
    """The config is unusable or every attempt failed; the message says which."""


@dataclass(frozen=True)
class Attempts:
    ok: bool
    tries: int
    last_error: str


def collect(ctx: ModuleContext) -> dict[str, str]:
    try:
        names = choose(ctx.cfg, ctx.instance)
        hostname, fqdn = names.hostname, names.fqdn
    except HostnameError:
        hostname = fqdn = ctx.instance.local_hostname or MISSING
    data = {"instance_id": ctx.instance.instance_id, "hostname": hostname, "fqdn": fqdn}
    data.update(dict.fromkeys(NO_KEY_FILE, MISSING))
    for field, keytype in KEY_FILES.items():
        text = ctx.target.read_text(public_path(keytype), default="").strip()
        data[field] = text or MISSING
    return data


def split_credentials(url: str) -> tuple[str, str | None]:
    """``user:pass@`` of a URL as an HTTP Basic Authorization value, and the URL without it
    (urllib would take the userinfo for part of the host, and it must not be logged)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    plain = urllib.parse.urlunsplit(parts._replace(netloc=host))
    user = urllib.parse.unquote(parts.username or "")
    pair = f"{user}:{urllib.parse.unquote(parts.password or '')}"
    return plain, "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def display_url(url: str) -> str:
    """The URL as it may be logged: without its userinfo."""
    return split_credentials(url)[0]


def post_form(
    url: str,
    data: dict[str, str],
    tries: int,
    timeout: float = REQUEST_TIMEOUT,
    delay: float = RETRY_DELAY,
    deadline: float = TOTAL_DEADLINE,
) -> Attempts:
    """POST ``data`` as a form until a 2xx/3xx answer, within ``tries`` and ``deadline``."""
    # urllib, not requests: this runs in the final stage of every first boot, and under an
    # emulated CPU importing requests alone took ~1.4 s of the guest's time to "configured".
    import urllib.error
    import urllib.request

    body = urllib.parse.urlencode(data).encode("ascii")
    url, auth = split_credentials(url)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "User-Agent": "bootseed phone_home"}
    if auth:
        headers["Authorization"] = auth
    start = time.monotonic()
    last = "no attempt made"
    made = 0
    for attempt in range(1, tries + 1):
        left = deadline - (time.monotonic() - start)
        if left <= 0:
            last += f" (gave up after {deadline:g}s)"
            break
        made = attempt
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=min(timeout, left)) as resp:
                resp.read(64 * 1024)
                if resp.status < 400:
                    return Attempts(True, attempt, "")
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # URLError wraps the socket error: name that (ConnectionRefusedError, timeout).
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            last = f"{type(cause).__name__}: {cause}"
        if attempt < tries:
            time.sleep(max(0.0, min(delay, deadline - (time.monotonic() - start))))
    return Attempts(False, made, last)


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("phone_home")
    if not isinstance(cfg, dict):
        raise PhoneHomeError("phone_home: expected a mapping with 'url'")
    url = cfg.get("url")
    if not isinstance(url, str) or not url:
        raise PhoneHomeError("phone_home.url is required")
    url = url.replace("$INSTANCE_ID", urllib.parse.quote(ctx.instance.instance_id, safe=""))
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        ctx.add_secret(parts.password)
    shown = display_url(url)
    if parts.scheme not in ("http", "https"):
        raise PhoneHomeError(f"phone_home.url: {shown!r} is not an http(s) URL")
    try:
        tries = int(cfg.get("tries", DEFAULT_TRIES))
    except (TypeError, ValueError):
        raise PhoneHomeError(f"phone_home.tries: {cfg.get('tries')!r} is not a number") from None
    if tries < 1:
        raise PhoneHomeError(f"phone_home.tries: {tries} must be at least 1")
    if tries > MAX_TRIES:
        ctx.log.warning("phone_home.tries %d capped at %d", tries, MAX_TRIES)
        tries = MAX_TRIES
    post = cfg.get("post", "all")
    problems: list[str] = []
    if post == "all":
        wanted = list(POSTABLE)
    elif isinstance(post, list):
        wanted = [k for k in post if k in POSTABLE]
        problems += [f"phone_home.post: unknown key {k!r}" for k in post if k not in POSTABLE]
    else:
        raise PhoneHomeError(f"phone_home.post: {post!r} is neither 'all' nor a list of keys")
    everything = collect(ctx)
    data = {k: everything[k] for k in wanted}
    result = post_form(url, data, tries, REQUEST_TIMEOUT, RETRY_DELAY, TOTAL_DEADLINE)
    if not result.ok:
        problems.insert(
            0, f"phone_home to {shown} failed after {result.tries} tries: {result.last_error}"
        )
    else:
        ctx.log.info("phoned home to %s (%d fields, try %d)", shown, len(data), result.tries)
    if problems:
        raise PhoneHomeError("; ".join(problems))


MODULE = ModuleSpec(
    name="phone_home",
    stage=Stage.FINAL,
    order=90,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("phone_home",),
)
