"""apt-get in the target: non-interactive, bounded, and precise about failures.

Every run waits a bounded time for the dpkg lock (unattended-upgrades may
hold it), retries downloads a bounded number of times, and has a wall-clock
limit. An install that fails because some requested packages do not exist
(or not in the requested version) is retried without them, so one typo does
not cost the other packages; the result names what failed and keeps the tail
of apt's output for the status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bootseed.late.execute import CapturedRun, run_captured
from bootseed.late.target import TargetRoot

LOCK_WAIT_SECONDS = 300
DOWNLOAD_RETRIES = 3
UPDATE_TIMEOUT = 900.0
INSTALL_TIMEOUT = 3600.0
TAIL_LINES = 12
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none",
           "NEEDRESTART_MODE": "a"}
BASE_ARGS = (
    "apt-get",
    "--quiet",
    "--assume-yes",
    f"--option=DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}",
    f"--option=Acquire::Retries={DOWNLOAD_RETRIES}",
    "--option=Dpkg::Options::=--force-confold",
    "--option=Dpkg::Options::=--force-unsafe-io",
)
# What apt says about a requested package it cannot give.
_UNKNOWN_PATTERNS = (
    re.compile(r"^E: Unable to locate package (?P<name>\S+)", re.MULTILINE),
    re.compile(r"^E: Package '(?P<name>[^']+)' has no installation candidate", re.MULTILINE),
    re.compile(r"^E: Version '(?P<version>[^']+)' for '(?P<name>[^']+)' was not found",
               re.MULTILINE),
    re.compile(r"^E: Couldn't find any package by (?:glob|regex) '(?P<name>[^']+)'",
               re.MULTILINE),
)
_CREDENTIALS_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")


@dataclass
class AptOutcome:
    ok: bool
    step: str
    tail: str = ""
    unavailable: list[str] = field(default_factory=list)  # requests apt cannot satisfy
    installed: list[str] = field(default_factory=list)


def redact(text: str) -> str:
    """apt output with ``user:password@`` removed from every URL (proxies, mirrors)."""
    return _CREDENTIALS_RE.sub(r"\g<scheme><redacted>@", text)


def tail_of(run: CapturedRun) -> str:
    lines = [line for line in redact(run.output).splitlines() if line.strip()]
    text = "\n".join(lines[-TAIL_LINES:])
    if run.timed_out:
        text += "\n(killed: ran past its time limit)"
    return text


def apt_get(target: TargetRoot, args: Sequence[str], timeout: float) -> CapturedRun:
    return run_captured(target, [*BASE_ARGS, *args], env=APT_ENV, timeout=timeout)


def update(target: TargetRoot) -> AptOutcome:
    # apt-get update exits 0 even when an index failed to download; its "W:" and
    # "E:" lines say so, and a source that cannot be read is worth a failure.
    run = apt_get(target, ["update"], UPDATE_TIMEOUT)
    failed = run.returncode != 0 or re.search(r"^(E:|W: Failed to fetch)", run.output,
                                               re.MULTILINE) is not None
    return AptOutcome(not failed, "apt-get update", tail_of(run) if failed else "")


def upgrade(target: TargetRoot) -> AptOutcome:
    run = apt_get(target, ["dist-upgrade"], INSTALL_TIMEOUT)
    return AptOutcome(run.returncode == 0, "apt-get dist-upgrade",
                      tail_of(run) if run.returncode else "")


def install(target: TargetRoot, requests: Sequence[str], rounds: int = 3) -> AptOutcome:
    """Install ``requests`` (``name`` or ``name=version``); drop the ones apt
    cannot find and install the rest."""
    wanted = list(dict.fromkeys(requests))
    unavailable: list[str] = []
    last_tail = ""
    for _ in range(rounds):
        if not wanted:
            break
        run = apt_get(target, ["install", "--no-install-recommends", *wanted], INSTALL_TIMEOUT)
        if run.returncode == 0:
            return AptOutcome(not unavailable, "apt-get install", last_tail, unavailable, wanted)
        last_tail = tail_of(run)
        missing = _unavailable(run.output, wanted)
        if not missing:
            return AptOutcome(False, "apt-get install", last_tail, unavailable)
        unavailable += missing
        wanted = [w for w in wanted if w not in missing]
    return AptOutcome(False, "apt-get install", last_tail, unavailable)


def _unavailable(output: str, wanted: Sequence[str]) -> list[str]:
    """The requests apt named as impossible, in the order apt named them."""
    found: list[tuple[int, str]] = []
    for pattern in _UNKNOWN_PATTERNS:
        for match in pattern.finditer(output):
            name = match.group("name")
            version = match.groupdict().get("version")
            request = f"{name}={version}" if version else name
            for candidate in (request, name):
                if candidate in wanted:
                    found.append((match.start(), candidate))
                    break
    return list(dict.fromkeys(request for _, request in sorted(found)))


def is_installed(target: TargetRoot, package: str) -> bool:
    """Whether dpkg in the target has ``package`` (without a version) fully installed."""
    name = package.split("=", 1)[0]
    run = run_captured(target, ["dpkg-query", "--show", "--showformat=${Status}", name],
                       timeout=60)
    return run.returncode == 0 and run.output.strip().endswith("install ok installed")


def ensure_installed(target: TargetRoot, requests: Sequence[str]) -> AptOutcome:
    """Install the ``requests`` that are not installed yet, refreshing the indices first.

    For modules that hand over to an agent (puppet, ansible, salt): nothing is
    downloaded when everything is already there, and an image without package
    lists (they are removed from images to keep them small) still installs."""
    missing = [r for r in requests if not is_installed(target, r)]
    if not missing:
        return AptOutcome(True, "already installed", installed=[])
    # A failing source (a typo in apt.sources) need not stop the install from the
    # others; when the install fails too, both tails are kept.
    refreshed = update(target)
    outcome = install(target, missing)
    if not outcome.ok and not refreshed.ok:
        outcome.tail = f"{refreshed.tail}\n{outcome.tail}".strip()
    return outcome
