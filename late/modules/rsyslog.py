"""``rsyslog``: rsyslog configuration files and remote destinations (cloud-init 22.4).

Keys of the ``rsyslog`` mapping:

- ``configs``: a list; an entry is the text of a rule file, or ``{filename, content}``.
  Files without a filename go to ``config_filename`` (default
  ``20-cloud-config.conf``); a relative filename is inside ``config_dir`` (default
  ``/etc/rsyslog.d``). The first entry for a file replaces it, later ones for the same
  file are appended; each content ends with a newline.
- ``remotes``: name -> ``[SELECTOR] [@|@@]HOST[:PORT]`` (``@`` UDP, the default; ``@@``
  TCP; an IPv6 host in brackets; SELECTOR defaults to ``*.*``). They become one
  ``SELECTOR @HOST:PORT # name`` line each, between ``# begin remotes`` and ``# end
  remotes``, appended to ``config_filename``.
- ``service_reload_command``: ``auto`` (default: restart rsyslog when it is running,
  since rsyslog reads its rules only at start) or a command (a list, or a string run by
  ``sh -c``) run in the target when a file changed.

The legacy forms are read too: ``rsyslog`` as a list (the ``configs``), with the
top-level ``rsyslog_dir`` and ``rsyslog_filename``. Every file is written through the
target (never following a link out of it); a bad entry is reported and left out.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late import linegrammar
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.rsyslogd import CONFIG_DIR, restart_if_running
from bootseed.late.target import TargetPathError

DEFAULT_FILENAME = "20-cloud-config.conf"
REMOTES_HEADER = "# begin remotes"
REMOTES_FOOTER = "# end remotes"
_TARGET = re.compile(r"(?P<proto>@@|@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s]+))"
                     r"(?::(?P<port>\d{1,5}))?")

_CONFIG_ENTRY = {
    "oneOf": [
        {"type": "string"},
        {"type": "object", "properties": {"filename": {"type": "string"},
                                          "content": {"type": "string"}},
         "required": ["content"], "additionalProperties": False},
    ],
}
SCHEMA: dict[str, Any] = {
    "properties": {
        "rsyslog": {
            "oneOf": [
                {"type": "object", "additionalProperties": False, "properties": {
                    "config_dir": {"type": "string", "minLength": 1},
                    "config_filename": {"type": "string", "minLength": 1},
                    "configs": {"type": "array", "items": _CONFIG_ENTRY},
                    "remotes": {"type": "object",
                                "additionalProperties": {"type": ["string", "null"]}},
                    "service_reload_command": {"oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    ]},
                }},
                {"type": "array", "items": _CONFIG_ENTRY, "deprecated": True},
            ],
        },
        "rsyslog_dir": {"type": "string", "minLength": 1, "deprecated": True},
        "rsyslog_filename": {"type": "string", "minLength": 1, "deprecated": True},
    },
}


@dataclass(frozen=True)
class RemoteLine:
    name: str
    selector: str
    protocol: str  # "udp" or "tcp"
    host: str
    port: int | None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        marker = "@@" if self.protocol == "tcp" else "@"
        port = f":{self.port}" if self.port is not None else ""
        comment = f" # {self.name}" if self.name else ""
        return f"{self.selector} {marker}{host}{port}{comment}"


def parse_remote(name: str, text: str) -> RemoteLine:
    """One ``remotes`` value; raises LineGrammarError naming the remote."""
    where = f"rsyslog.remotes.{name}"
    linegrammar.single_line(name, f"{where}: the name")
    words = text.split("#", 1)[0].split()
    if len(words) == 1:
        selector, destination = "*.*", words[0]
    elif len(words) == 2:
        selector, destination = words
    else:
        raise linegrammar.LineGrammarError(f"{where}: expected [SELECTOR] [@|@@]HOST[:PORT]")
    linegrammar.syslog_selector(selector, f"{where}: the selector")
    found = _TARGET.fullmatch(destination)
    if found is None:
        raise linegrammar.LineGrammarError(f"{where}: expected [@|@@]HOST[:PORT]")
    if found.group("v6"):
        host = linegrammar.ip_address(found.group("v6"), f"{where}: the address")
    else:
        host = linegrammar.host_or_address(found.group("host"), f"{where}: the host")
    port = int(found.group("port")) if found.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise linegrammar.LineGrammarError(f"{where}: port {port} is not a port")
    protocol = "tcp" if found.group("proto") == "@@" else "udp"
    return RemoteLine(name, selector, protocol, host, port)


def remotes_block(ctx: ModuleContext, remotes: object) -> str | None:
    if not isinstance(remotes, dict):
        if remotes is not None:
            ctx.problems.append(Problem("rsyslog.remotes", "must be a mapping of name to "
                                        "destination; ignored"))
        return None
    lines: list[str] = []
    for name, value in remotes.items():
        if not value:
            continue  # cloud-init: an empty value switches a remote off
        if not isinstance(value, str):
            ctx.problems.append(Problem(f"rsyslog.remotes.{name}", "must be a string; "
                                        "left out"))
            continue
        try:
            lines.append(str(parse_remote(str(name), value)))
        except linegrammar.LineGrammarError as exc:
            ctx.problems.append(Problem(f"rsyslog.remotes.{name}", f"{exc}; left out"))
    if not lines:
        return None
    return "\n".join([REMOTES_HEADER, *lines, REMOTES_FOOTER]) + "\n"


@dataclass(frozen=True)
class Settings:
    config_dir: str
    config_filename: str
    configs: list[Any]
    remotes: object
    reload: object


def settings(ctx: ModuleContext) -> Settings | None:
    cfg = ctx.cfg
    value = cfg.get("rsyslog")
    config_dir = cfg.get("rsyslog_dir", CONFIG_DIR)
    config_filename = cfg.get("rsyslog_filename", DEFAULT_FILENAME)
    if isinstance(value, list):  # the legacy form: the list is the configs
        return Settings(str(config_dir), str(config_filename), value, None, "auto")
    if not isinstance(value, dict):
        ctx.problems.append(Problem("rsyslog", "must be a mapping (or a list of configs); "
                                    "nothing done"))
        return None
    configs = value.get("configs", [])
    if not isinstance(configs, list):
        ctx.problems.append(Problem("rsyslog.configs", "must be a list; ignored"))
        configs = []
    return Settings(str(value.get("config_dir", config_dir)),
                    str(value.get("config_filename", config_filename)), configs,
                    value.get("remotes"), value.get("service_reload_command", "auto"))


def file_path(config_dir: str, filename: str) -> str:
    name = filename.strip()
    path = posixpath.normpath(posixpath.join(config_dir, name))
    if not name or ".." in name.split("/") or not path.startswith("/"):
        raise ValueError("is not a file name")
    return path


def write_configs(ctx: ModuleContext, found: Settings, entries: list[Any]) -> list[str]:
    """Write every entry; returns the files written, in order."""
    contents: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        where = f"rsyslog.configs[{index}]"
        if isinstance(entry, str):
            filename, content = found.config_filename, entry
        elif isinstance(entry, dict) and isinstance(entry.get("content"), str):
            filename, content = str(entry.get("filename") or found.config_filename), \
                entry["content"]
        else:
            ctx.problems.append(Problem(where, "must be a string or {filename, content}; "
                                        "left out"))
            continue
        try:
            path = file_path(found.config_dir, filename)
        except ValueError:
            ctx.problems.append(Problem(f"{where}.filename", f"{filename!r} is not a file "
                                        "name; left out"))
            continue
        contents.setdefault(path, []).append(content if content.endswith("\n")
                                             else content + "\n")
    written: list[str] = []
    for path, parts in contents.items():
        try:
            ctx.target.write(path, "".join(parts), mode=0o644)
        except (OSError, TargetPathError) as exc:
            ctx.problems.append(Problem("rsyslog", f"cannot write {path}: {exc}"))
            continue
        written.append(path)
    return written


def reload(ctx: ModuleContext, command: object) -> None:
    argv: str | list[str]
    if command == "auto":
        argv = "auto"
    elif isinstance(command, str) and command:
        argv = ["sh", "-c", command]
    elif isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        argv = [str(a) for a in command]
    else:
        ctx.problems.append(Problem("rsyslog.service_reload_command", "must be auto, a "
                                    "command string or a list of strings; rsyslog not "
                                    "restarted"))
        return
    problem = restart_if_running(ctx.target, argv, "rsyslog.service_reload_command")
    if problem is not None:
        ctx.problems.append(problem)


def handle(ctx: ModuleContext) -> None:
    found = settings(ctx)
    if found is None:
        return
    entries = list(found.configs)
    block = remotes_block(ctx, found.remotes)
    if block is not None:
        entries.append({"filename": found.config_filename, "content": block})
    if not entries:
        ctx.problems.append(Problem("rsyslog", "no configs and no remotes: nothing to do",
                                    Level.NOTE))
        return
    written = write_configs(ctx, found, entries)
    if not written:
        return
    ctx.log.info("rsyslog: wrote %s", ", ".join(written))
    reload(ctx, found.reload)


MODULE = ModuleSpec(
    name="rsyslog",
    stage=Stage.INIT,
    order=57,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("rsyslog",),
)
