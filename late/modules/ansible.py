"""``ansible``: install Ansible and let the instance configure itself with ``ansible-pull``.

cloud-init 22.4 semantics: ``install_method: distro`` (the default) installs
``package_name`` (``ansible``; ``ansible-core`` is the small one) from the apt
sources; ``pip`` is not supported by bootseed and says so. ``galaxy.actions``
(each a command line) run first, then ``pull`` runs ``ansible-pull`` with every
``pull`` setting as its long option (``checkout: main`` -> ``--checkout=main``,
``accept_host_key: true`` -> ``--accept-host-key``) and ``playbook_name`` last.
``setup_controller`` clones its ``repositories`` (``git clone source path``) and
runs ``ansible-playbook`` for each ``run_ansible`` entry. Everything runs as
``run_user`` (root by default). A failing command fails the module with its
output's tail; the rest of the config still applies.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from bootseed.contract.problems import Problem
from bootseed.late.apt import aptget
from bootseed.late.execute import CapturedRun, find_tool, run_captured
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

RUN_TIMEOUT = 3600.0
TAIL_LINES = 10
_PULL_OPTIONS = ("accept_host_key", "clean", "full", "diff", "ssh_common_args",
                 "scp_extra_args", "sftp_extra_args", "private_key", "checkout", "module_path",
                 "timeout", "url", "connection", "vault_id", "vault_password_file",
                 "module_name", "sleep", "tags", "skip_tags")
_PLAYBOOK_OPTIONS = ("inventory", "become_password_file", "connection_password_file",
                     "list_hosts", "syntax_check", "timeout", "vault_id",
                     "vault_password_file", "background", "check", "diff", "module_path",
                     "poll", "args", "extra_vars", "forks", "scp_extra_args",
                     "sftp_extra_args", "private_key", "connection", "module_name", "sleep",
                     "tags", "skip_tags")
_SCALAR = {"type": ["string", "boolean", "integer"]}
SCHEMA: dict[str, Any] = {
    "properties": {
        "ansible": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "install_method": {"enum": ["distro", "pip"]},
                "package_name": {"type": "string"},
                "run_user": {"type": "string"},
                "galaxy": {
                    "type": "object",
                    "required": ["actions"],
                    "properties": {"actions": {"type": "array", "items": {
                        "type": "array", "items": {"type": "string"}}}},
                },
                "pull": {
                    "type": "object",
                    "required": ["url", "playbook_name"],
                    "additionalProperties": False,
                    "properties": {"playbook_name": {"type": "string"},
                                   **{name: _SCALAR for name in _PULL_OPTIONS}},
                },
                "setup_controller": {
                    "type": "object",
                    "properties": {
                        "repositories": {"type": "array", "items": {
                            "type": "object", "required": ["path", "source"],
                            "properties": {"path": {"type": "string"},
                                           "source": {"type": "string"}}}},
                        "run_ansible": {"type": "array", "items": {
                            "type": "object", "required": ["playbook_name"],
                            "properties": {"playbook_name": {"type": "string"},
                                           "playbook_dir": {"type": "string"},
                                           **{n: _SCALAR for n in _PLAYBOOK_OPTIONS}}}},
                    },
                },
            },
        }
    }
}


def options(settings: dict[str, Any], skip: Sequence[str]) -> list[str]:
    """Long options from ``settings``: true -> ``--flag``, false/None left out."""
    argv = []
    for key, value in settings.items():
        if key in skip or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        argv.append(flag if value is True else f"{flag}={value}")
    return argv


def pull_command(pull: dict[str, Any]) -> list[str]:
    return ["ansible-pull", *options(pull, ("playbook_name",)), str(pull["playbook_name"])]


def playbook_command(entry: dict[str, Any]) -> list[str]:
    playbook = str(entry["playbook_name"])
    if entry.get("playbook_dir"):
        playbook = f"{str(entry['playbook_dir']).rstrip('/')}/{playbook}"
    return ["ansible-playbook", *options(entry, ("playbook_name", "playbook_dir")), playbook]


def as_user(user: str, argv: list[str]) -> list[str]:
    """``argv`` run as ``user`` with that user's login environment (HOME, PATH)."""
    if user == "root":
        return argv
    return ["runuser", "--login", user, "--command", shlex.join(argv)]


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("ansible")
    if not isinstance(cfg, dict):
        return
    if cfg.get("install_method", "distro") == "pip":
        ctx.problems.append(Problem("ansible.install_method", "pip is not supported by "
                                    "bootseed (Debian's Python refuses system-wide pip "
                                    "installs); use distro with package_name ansible or "
                                    "ansible-core"))
    else:
        package = str(cfg.get("package_name", "ansible"))
        outcome = aptget.ensure_installed(ctx.target, [package])
        if not outcome.ok:
            raise RuntimeError(f"installing {package} failed:\n{outcome.tail}")
    user = str(cfg.get("run_user", "root"))
    steps: list[tuple[str, list[str]]] = []
    for index, action in enumerate((cfg.get("galaxy") or {}).get("actions", [])):
        steps.append((f"ansible.galaxy.actions[{index}]", [str(a) for a in action]))
    controller = cfg.get("setup_controller") or {}
    for index, repo in enumerate(controller.get("repositories", [])):
        steps.append((f"ansible.setup_controller.repositories[{index}]",
                      ["git", "clone", str(repo["source"]), str(repo["path"])]))
    for index, entry in enumerate(controller.get("run_ansible", [])):
        steps.append((f"ansible.setup_controller.run_ansible[{index}]", playbook_command(entry)))
    if cfg.get("pull"):
        steps.append(("ansible.pull", pull_command(cfg["pull"])))
    for where, argv in steps:
        if find_tool(ctx.target, argv[0]) is None:
            raise RuntimeError(f"{where}: {argv[0]} is not installed")
        ctx.log.info("ansible: running %s", shlex.join(argv))
        _check(where, run_captured(ctx.target, as_user(user, argv), timeout=RUN_TIMEOUT))


def _check(where: str, run: CapturedRun) -> None:
    if run.returncode == 0 and not run.timed_out:
        return
    tail = "\n".join(run.output.strip().splitlines()[-TAIL_LINES:])
    reason = "ran past its time limit" if run.timed_out else f"exited {run.returncode}"
    raise RuntimeError(f"{where}: {shlex.join(run.argv)} {reason}:\n{tail}")


MODULE = ModuleSpec(
    name="ansible",
    stage=Stage.FINAL,
    order=15,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("ansible",),
)
