"""``chef``: Chef Infra Client's configuration, keys and first-run data, and its first run.

cloud-init 22.4's files and defaults: the ``directories`` are created;
``validation_cert``/``validation_key`` is written to ``/etc/chef/validation.pem``
(0600; ``system`` means keep the one already there), ``encrypted_data_bag_secret``
likewise; ``/etc/chef/client.rb`` is rendered from the settings below and
``json_attribs`` (``/etc/chef/firstboot.json``) holds ``run_list`` and
``initial_attributes``. Chef is not in Debian bookworm: ``install_type:
packages`` installs ``chef`` from the apt sources the user configured and
``omnibus`` runs the installer from ``omnibus_url`` (fetched with the bounded
HTTP client); ``gems`` is not supported. The client runs (``exec``, or after
bootseed installed it) only when ``chef-client`` is present; without it the
status says the files are written and no client ran.
"""

from __future__ import annotations

import json
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.apt import aptget
from bootseed.late.execute import find_tool, run_captured
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

CONFIG_PATH = "/etc/chef/client.rb"
FIRSTBOOT_PATH = "/etc/chef/firstboot.json"
VALIDATION_PATH = "/etc/chef/validation.pem"
SECRET_PATH = "/etc/chef/encrypted_data_bag_secret"
DEFAULT_DIRECTORIES = ("/etc/chef", "/var/log/chef", "/var/lib/chef", "/var/cache/chef",
                       "/var/backups/chef", "/var/run/chef")
DEFAULT_EXEC_ARGS = ("-d", "-i", "1800", "-s", "20")
OMNIBUS_URL = "https://www.chef.io/chef/install.sh"
OMNIBUS_BUDGET = 120.0
RUN_TIMEOUT = 1800.0

# client.rb settings: (config key, client.rb name, default, kind). "symbol" values are
# written as :name, "string" quoted, "bool" bare; the defaults are cloud-init's.
SETTINGS: tuple[tuple[str, str, object, str], ...] = (
    ("log_level", "log_level", "info", "symbol"),
    ("log_location", "log_location", "/var/log/chef/client.log", "string"),
    ("ssl_verify_mode", "ssl_verify_mode", "verify_none", "symbol"),
    ("validation_name", "validation_client_name", None, "string"),
    ("validation_key", "validation_key", VALIDATION_PATH, "path"),
    ("client_key", "client_key", "/etc/chef/client.pem", "string"),
    ("server_url", "chef_server_url", None, "string"),
    ("environment", "environment", "_default", "string"),
    ("node_name", "node_name", None, "string"),
    ("json_attribs", "json_attribs", FIRSTBOOT_PATH, "string"),
    ("file_cache_path", "file_cache_path", "/var/cache/chef", "string"),
    ("file_backup_path", "file_backup_path", "/var/backups/chef", "string"),
    ("pid_file", "pid_file", "/var/run/chef/client.pid", "string"),
    ("show_time", "Chef::Log::Formatter.show_time", True, "bool"),
    ("encrypted_data_bag_secret", "encrypted_data_bag_secret", None, "path"),
    ("chef_license", "chef_license", None, "string"),
)

_STR = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "properties": {
        "chef": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "directories": {"type": "array", "items": _STR},
                "validation_cert": _STR,
                "validation_key": _STR,
                "validation_name": _STR,
                "encrypted_data_bag_secret": _STR,
                "environment": _STR,
                "server_url": _STR,
                "node_name": _STR,
                "exec": {"type": "boolean"},
                "exec_arguments": {"type": "array", "items": _STR},
                "force_install": {"type": "boolean"},
                "install_type": {"enum": ["packages", "gems", "omnibus"]},
                "omnibus_url": _STR,
                "omnibus_url_retries": {"type": "integer"},
                "omnibus_version": _STR,
                "chef_license": _STR,
                "client_key": _STR,
                "json_attribs": _STR,
                "log_level": _STR,
                "log_location": _STR,
                "pid_file": _STR,
                "file_backup_path": _STR,
                "file_cache_path": _STR,
                "firstboot_path": _STR,
                "config_path": _STR,
                "run_list": {"type": "array", "items": _STR},
                "initial_attributes": {"type": "object"},
                "show_time": {"type": "boolean"},
                "ssl_verify_mode": _STR,
            },
        }
    }
}


def _ruby_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid double-quoted Ruby string


def render_client_rb(cfg: dict[str, Any], instance_id: str) -> str:
    """``client.rb`` for ``cfg`` (cloud-init's template's settings, in its order)."""
    lines = ["# Written by bootseed from the chef key of cloud-config.", ""]
    for key, name, default, kind in SETTINGS:
        value = cfg.get(key, default)
        if key == "node_name" and value is None:
            value = instance_id
        if key == "validation_key" and "validation_cert" not in cfg and "validation_key" not in cfg:
            value = VALIDATION_PATH  # cloud-init names the file even when it is absent
        if key == "validation_key" and isinstance(value, str) and "\n" in value:
            value = VALIDATION_PATH  # the key's content, not a path: it is written there
        if key == "encrypted_data_bag_secret":
            value = SECRET_PATH if value is not None else None
        if value is None:
            continue
        if kind == "symbol":
            lines.append(f"{name} :{str(value).lstrip(':')}")
        elif kind == "bool":
            lines.append(f"{name} {'true' if value else 'false'}")
        else:
            lines.append(f"{name} {_ruby_string(str(value))}")
    return "\n".join(lines) + "\n"


def firstboot(cfg: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = dict(cfg.get("initial_attributes") or {})
    if "run_list" in cfg:
        data["run_list"] = list(cfg["run_list"])
    return data


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("chef")
    if not isinstance(cfg, dict):
        return
    for key in ("validation_cert", "validation_key", "encrypted_data_bag_secret"):
        if isinstance(cfg.get(key), str):
            ctx.add_secret(cfg[key])
    for directory in cfg.get("directories", DEFAULT_DIRECTORIES):
        with ctx.target.open_dir(str(directory), create=True):
            pass
    pem = cfg.get("validation_cert", cfg.get("validation_key"))
    if isinstance(pem, str) and pem != "system":
        ctx.target.write(VALIDATION_PATH, pem, mode=0o600)
    if isinstance(cfg.get("encrypted_data_bag_secret"), str):
        ctx.target.write(SECRET_PATH, cfg["encrypted_data_bag_secret"], mode=0o600)
    ctx.target.write(str(cfg.get("config_path", CONFIG_PATH)),
                     render_client_rb(cfg, ctx.instance.instance_id), mode=0o644)
    ctx.target.write(str(cfg.get("firstboot_path", cfg.get("json_attribs", FIRSTBOOT_PATH))),
                     json.dumps(firstboot(cfg), indent=2, sort_keys=True) + "\n", mode=0o644)
    installed_now = _install(ctx, cfg)
    if not (cfg.get("exec", False) or installed_now):
        return
    client = find_tool(ctx.target, "chef-client")
    if client is None:
        ctx.problems.append(Problem("chef", "chef-client is not installed: its configuration "
                                    "is written, no client ran (install Chef with "
                                    "chef.install_type and a source of its packages)",
                                    Level.WARNING))
        return
    args = [str(a) for a in cfg.get("exec_arguments", DEFAULT_EXEC_ARGS)]
    run = run_captured(ctx.target, [client, *args], timeout=RUN_TIMEOUT)
    if run.returncode != 0 or run.timed_out:
        tail = "\n".join(run.output.strip().splitlines()[-8:])
        ctx.problems.append(Problem("chef.exec", f"chef-client exited {run.returncode}:\n{tail}"))


def _install(ctx: ModuleContext, cfg: dict[str, Any]) -> bool:
    """Install Chef when asked (``force_install``) or missing and a type is named."""
    kind = cfg.get("install_type")
    present = find_tool(ctx.target, "chef-client") is not None
    if kind is None or (present and not cfg.get("force_install", False)):
        return False
    if kind == "gems":
        ctx.problems.append(Problem("chef.install_type", "gems is not supported by bootseed; "
                                    "use packages with an apt source that has chef, or "
                                    "omnibus with omnibus_url"))
        return False
    if kind == "packages":
        outcome = aptget.ensure_installed(ctx.target, ["chef"])
        if not outcome.ok:
            ctx.problems.append(Problem("chef.install_type", "installing chef failed (Debian "
                                        "bookworm has no chef: add its repository in "
                                        f"apt.sources):\n{outcome.tail}"))
            return False
        return True
    return _omnibus(ctx, cfg)


def _omnibus(ctx: ModuleContext, cfg: dict[str, Any]) -> bool:
    from bootseed.early.budget import Budget
    from bootseed.early.http import FetchError, fetch

    url = str(cfg.get("omnibus_url", OMNIBUS_URL))
    try:
        script = fetch(url, budget=Budget(OMNIBUS_BUDGET), timeout=30.0).body
    except FetchError as exc:
        ctx.problems.append(Problem("chef.omnibus_url", f"cannot fetch the installer: {exc}"))
        return False
    ctx.target.write("/var/lib/bootseed/chef-install.sh", script, mode=0o700)
    args = ["/bin/sh", "/var/lib/bootseed/chef-install.sh"]
    if cfg.get("omnibus_version"):
        args += ["-v", str(cfg["omnibus_version"])]
    run = run_captured(ctx.target, args, timeout=RUN_TIMEOUT)
    ctx.target.unlink("/var/lib/bootseed/chef-install.sh")
    if run.returncode != 0:
        tail = "\n".join(run.output.strip().splitlines()[-8:])
        ctx.problems.append(Problem("chef.omnibus_url", f"the installer exited "
                                    f"{run.returncode}:\n{tail}"))
        return False
    return True


MODULE = ModuleSpec(
    name="chef",
    stage=Stage.FINAL,
    order=14,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("chef",),
)
