"""Which hostname and FQDN the config and the seed ask for (cloud-init's rules).

``fqdn`` wins over ``hostname``; a dotted ``hostname`` is taken as the FQDN; else
the seed's ``local-hostname`` is used, and a bare name gets the ``localdomain``
domain for its FQDN. With nothing at all the answer is ``localhost`` and marked
default, which callers treat as "do not set".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootseed.contract.atomicfile import atomic_write
from bootseed.late import linegrammar
from bootseed.late.model import InstanceInfo

DEFAULT_DOMAIN = "localdomain"


class HostnameError(ValueError):
    """A hostname or FQDN that is not a valid DNS name."""


def check_hostname(name: str, key: str) -> str:
    try:
        return linegrammar.hostname(name, key)
    except linegrammar.LineGrammarError as exc:
        raise HostnameError(str(exc)) from None


@dataclass(frozen=True)
class HostnameChoice:
    hostname: str
    fqdn: str
    is_default: bool = False

    def preferred(self, prefer_fqdn: bool) -> str:
        return self.fqdn if prefer_fqdn else self.hostname


def _text(cfg: dict[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    return check_hostname(str(value).strip(), key)


def choose(cfg: dict[str, Any], instance: InstanceInfo) -> HostnameChoice:
    fqdn = _text(cfg, "fqdn")
    hostname = _text(cfg, "hostname")
    if fqdn:
        return HostnameChoice(hostname or fqdn.split(".")[0], fqdn)
    if hostname and "." in hostname:
        return HostnameChoice(hostname.split(".")[0], hostname)
    if hostname:
        return HostnameChoice(hostname, f"{hostname}.{DEFAULT_DOMAIN}")
    local = instance.local_hostname
    if local:
        local = check_hostname(local.strip(), "meta-data local-hostname")
        if "." in local:
            return HostnameChoice(local.split(".")[0], local)
        return HostnameChoice(local, f"{local}.{DEFAULT_DOMAIN}")
    return HostnameChoice("localhost", f"localhost.{DEFAULT_DOMAIN}", is_default=True)


def prefer_fqdn(cfg: dict[str, Any]) -> bool:
    return bool(cfg.get("prefer_fqdn_over_hostname", False))


HOSTNAME_FILE = "/etc/hostname"
PREVIOUS_NAME = "previous-hostname"


def apply_running(name: str) -> None:
    """Set the kernel's hostname (the caller checks the target is the host root)."""
    import socket

    socket.sethostname(name)


def read_first_word(path: Path) -> str | None:
    try:
        words = path.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    return words[0] if words else None


def write_small(path: Path, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, name + "\n", mode=0o644)
