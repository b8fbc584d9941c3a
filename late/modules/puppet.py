"""``puppet``: install the Puppet agent, configure it, and hand the instance to its server.

cloud-init 22.4 semantics with Debian's packaging: ``install`` (default true)
installs ``package_name`` (``puppet``; ``version`` pins it) from the
configured apt sources when it is missing; ``install_type: aio`` (Puppet's
own installer script from the internet) is not supported and says so.
``conf`` sections are merged into ``conf_file`` (``/etc/puppet/puppet.conf``);
``conf.ca_cert`` is installed as ``<ssl_dir>/certs/ca.pem``; ``certname``
takes ``%i`` (instance id) and ``%f`` (FQDN) and is lower-cased.
``csr_attributes`` (``custom_attributes`` such as the challengePassword token
``1.2.840.113549.1.9.7``, and ``extension_requests``) goes to
``csr_attributes_path`` with mode 0600: the token is a secret, cut from logs
and status. ``exec: true`` runs ``puppet agent`` with ``exec_args`` (default
``--test``) once, now; ``start_service`` (default true) enables and starts the
agent service. A run the server refuses (no certificate: wrong token) fails
this module with puppet's own words, and the rest of the config still applies.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import yaml
from bootseed.contract.problems import Level, Problem
from bootseed.late import hostnames, services
from bootseed.late.apt import aptget
from bootseed.late.execute import run_captured
from bootseed.late.handover import inifile
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

CHALLENGE_PASSWORD_OIDS = ("1.2.840.113549.1.9.7", "challengePassword")
PRESHARED_KEY_NAMES = ("pp_preshared_key", "1.3.6.1.4.1.34380.1.1.4")
SERVICE = "puppet"
AGENT_TIMEOUT = 1800.0
# puppet agent --detailed-exitcodes (implied by --test): 0 nothing to change, 2 changes
# applied; 4 and 6 mean some resources failed, 1 the run itself failed.
AGENT_SUCCESS = (0, 2)


@dataclass(frozen=True)
class Paths:
    conf_file: str
    ssl_dir: str
    csr_attributes: str


DEBIAN_PATHS = Paths("/etc/puppet/puppet.conf", "/var/lib/puppet/ssl",
                     "/etc/puppet/csr_attributes.yaml")

_STRING_OR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
SCHEMA: dict[str, Any] = {
    "properties": {
        "puppet": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "install": {"type": "boolean"},
                "version": {"type": "string"},
                "install_type": {"enum": ["packages", "aio"]},
                "collection": {"type": "string"},
                "aio_install_url": {"type": "string"},
                "cleanup": {"type": "boolean"},
                "conf_file": {"type": "string"},
                "ssl_dir": {"type": "string"},
                "csr_attributes_path": {"type": "string"},
                "package_name": {"type": "string"},
                "exec": {"type": "boolean"},
                "exec_args": _STRING_OR_LIST,
                "start_service": {"type": "boolean"},
                "conf": {
                    "type": "object",
                    "properties": {"ca_cert": {"type": "string"}},
                    "additionalProperties": {"type": "object"},
                },
                "csr_attributes": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "custom_attributes": {"type": "object"},
                        "extension_requests": {"type": "object"},
                    },
                },
            },
        }
    }
}


def paths(cfg: dict[str, Any]) -> Paths:
    return Paths(str(cfg.get("conf_file", DEBIAN_PATHS.conf_file)),
                 str(cfg.get("ssl_dir", DEBIAN_PATHS.ssl_dir)),
                 str(cfg.get("csr_attributes_path", DEBIAN_PATHS.csr_attributes)))


def substitute_certname(value: str, instance_id: str, fqdn: str) -> str:
    return value.replace("%i", instance_id).replace("%f", fqdn).lower()


def conf_settings(conf: dict[str, Any], instance_id: str,
                  fqdn: str) -> list[inifile.Setting]:
    """The ``puppet.conf`` settings of ``conf`` (``ca_cert`` is not one of them)."""
    sections: dict[str, dict[str, object]] = {}
    for section, values in conf.items():
        if section == "ca_cert":
            continue
        if not isinstance(values, dict):
            raise inifile.IniValueError(f"puppet.conf.{section}: must be a mapping of "
                                        "settings")
        sections[section] = {
            key: substitute_certname(str(value), instance_id, fqdn) if key == "certname"
            else value
            for key, value in values.items()}
    return inifile.settings_from(sections, "puppet.conf")


def csr_secrets(csr: dict[str, Any]) -> list[str]:
    """The values of ``csr_attributes`` that must never be shown."""
    found = []
    for name in CHALLENGE_PASSWORD_OIDS:
        value = (csr.get("custom_attributes") or {}).get(name)
        if value is not None:
            found.append(str(value))
    for name in PRESHARED_KEY_NAMES:
        value = (csr.get("extension_requests") or {}).get(name)
        if value is not None:
            found.append(str(value))
    return found


def agent_command(cfg: dict[str, Any]) -> list[str]:
    args = cfg.get("exec_args", ["--test"])
    if isinstance(args, str):
        args = shlex.split(args)
    return ["puppet", "agent", *[str(a) for a in args]]


def _install(ctx: ModuleContext, cfg: dict[str, Any]) -> bool:
    if not cfg.get("install", True):
        return True
    if cfg.get("install_type", "packages") == "aio":
        ctx.problems.append(Problem(
            "puppet.install_type", "aio (Puppet's installer script from the internet) is not "
            "supported by bootseed; use install_type: packages with a repository in "
            "apt.sources that carries Puppet's packages"))
        return False
    name = str(cfg.get("package_name", "puppet"))
    request = f"{name}={cfg['version']}" if cfg.get("version") else name
    outcome = aptget.ensure_installed(ctx.target, [request])
    if outcome.ok:
        ctx.log.info("puppet: %s", "installed " + request if outcome.installed
                     else f"{request} already installed")
        return True
    raise RuntimeError(f"installing {request} failed"
                       + (" (not available from any configured source)"
                          if outcome.unavailable else "") + f":\n{outcome.tail}")


def handle(ctx: ModuleContext) -> None:
    cfg = ctx.cfg.get("puppet")
    if not isinstance(cfg, dict):
        return
    csr = cfg.get("csr_attributes") or {}
    for secret in csr_secrets(csr):
        ctx.add_secret(secret)
    where = paths(cfg)
    name = hostnames.choose(ctx.cfg, ctx.instance)
    conf = cfg.get("conf") or {}
    # Checked before anything is installed or written: a bad setting stops the module
    # with nothing half-done.
    settings = conf_settings(conf, ctx.instance.instance_id, name.fqdn)
    if not _install(ctx, cfg):
        return
    if settings:
        existing = ctx.target.read_text(where.conf_file, default="")
        ctx.target.write(where.conf_file, inifile.merge(existing, settings), mode=0o644)
    if "ca_cert" in conf:
        ctx.target.write(f"{where.ssl_dir}/certs/ca.pem", str(conf["ca_cert"]), mode=0o644,
                         dir_mode=0o771)
    if csr:
        ctx.target.write(where.csr_attributes,
                         yaml.safe_dump(csr, default_flow_style=False, sort_keys=True),
                         mode=0o600)
    if cfg.get("exec", False):
        _run_agent(ctx, cfg)
    if cfg.get("start_service", True):
        problem = services.enable(ctx.target, SERVICE, "puppet.start_service", start=True)
        if problem is not None:
            ctx.problems.append(problem)


def _run_agent(ctx: ModuleContext, cfg: dict[str, Any]) -> None:
    command = agent_command(cfg)
    ctx.log.info("puppet: running %s", shlex.join(command))
    run = run_captured(ctx.target, command, timeout=AGENT_TIMEOUT)
    if run.returncode in AGENT_SUCCESS and not run.timed_out:
        ctx.log.info("puppet: agent run finished (%s)",
                     "changes applied" if run.returncode == 2 else "nothing to change")
        return
    lines = [line for line in run.output.splitlines() if line.strip()]
    reason = "ran past its time limit" if run.timed_out else f"exited {run.returncode}"
    certificate = any("certificate" in line.lower() for line in lines[-8:])
    ctx.problems.append(Problem(
        "puppet.exec", f"{shlex.join(command)} {reason}"
        + ("; the server did not sign this instance's certificate (check the "
           "challengePassword token and the server's autosign policy)" if certificate else "")
        + ":\n" + "\n".join(lines[-8:]), Level.ERROR))


MODULE = ModuleSpec(
    name="puppet",
    stage=Stage.FINAL,
    order=12,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("puppet",),
)
