"""``ca_certs``: extra trusted CA certificates (cloud-init 22.4, Debian).

Each ``trusted`` entry (one PEM certificate, or a chain of them) becomes
``/usr/local/share/ca-certificates/bootseed-N.crt``, where Debian's
``update-ca-certificates`` picks local certificates up. ``remove_defaults``
turns off every certificate listed in ``/etc/ca-certificates.conf`` (a ``!``
before its line). ``update-ca-certificates`` then runs in the target.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

from bootseed.contract.problems import Level, Problem
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage

LOCAL_DIR = "/usr/local/share/ca-certificates"
FILE_PREFIX = "bootseed-"
CONF = "/etc/ca-certificates.conf"
TOOL = "/usr/sbin/update-ca-certificates"
_PEM_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*\n([A-Za-z0-9+/=\s]+?)\n?-----END CERTIFICATE-----")
_CERTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "remove_defaults": {"type": "boolean"},
        "remove-defaults": {"type": "boolean"},
        "trusted": {"type": "array", "items": {"type": "string"}},
    },
}
SCHEMA: dict[str, Any] = {"properties": {"ca_certs": _CERTS_SCHEMA, "ca-certs": _CERTS_SCHEMA}}


class CertificateError(ValueError):
    """An entry that is not PEM certificates."""


def pem_certificates(text: object) -> str:
    """``text`` re-written as its PEM CERTIFICATE blocks; raises unless that is all it is."""
    if not isinstance(text, str):
        raise CertificateError("must be a PEM certificate (text)")
    blocks = []
    rest = _PEM_BLOCK.sub("", text)
    if rest.strip():
        raise CertificateError("holds something other than PEM CERTIFICATE blocks")
    for match in _PEM_BLOCK.finditer(text):
        body = "".join(match.group(1).split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise CertificateError("has a CERTIFICATE block that is not base64") from None
        if not der.startswith(b"\x30"):  # a DER SEQUENCE, as every X.509 certificate is
            raise CertificateError("has a CERTIFICATE block that is not DER")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        blocks.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines)
                      + "\n-----END CERTIFICATE-----\n")
    if not blocks:
        raise CertificateError("has no PEM CERTIFICATE block")
    return "".join(blocks)


def settings(ctx: ModuleContext) -> tuple[str, dict[str, Any]] | None:
    """(the key used, its mapping); ``ca_certs`` wins over the old spelling ``ca-certs``."""
    key = "ca_certs" if "ca_certs" in ctx.cfg else "ca-certs"
    if key == "ca_certs" and "ca-certs" in ctx.cfg:
        ctx.problems.append(Problem("ca-certs", "both ca_certs and ca-certs are given; "
                                    "ca-certs is ignored", Level.WARNING))
    value = ctx.cfg.get(key)
    if not isinstance(value, dict):
        ctx.problems.append(Problem(key, "must be a mapping; nothing changed"))
        return None
    return key, value


def remove_old_local_certs(ctx: ModuleContext) -> None:
    """This instance's certificates replace an earlier instance's."""
    if not ctx.target.exists(LOCAL_DIR):
        return
    with ctx.target.open_dir(LOCAL_DIR) as fd:
        for name in os.listdir(fd):
            if name.startswith(FILE_PREFIX) and name.endswith(".crt"):
                os.unlink(name, dir_fd=fd)


def disable_defaults(ctx: ModuleContext) -> None:
    text = ctx.target.read_text(CONF, default="")
    lines = [line if not line.strip() or line.startswith(("#", "!")) else f"!{line}"
             for line in text.splitlines()]
    ctx.target.write(CONF, "".join(f"{line}\n" for line in lines), mode=0o644)


def update_store(ctx: ModuleContext, key: str, fresh: bool) -> None:
    from bootseed.late.execute import can_run_in, run_captured

    if not ctx.target.exists(TOOL):
        ctx.problems.append(Problem(key, "the ca-certificates package (update-ca-certificates) "
                                    "is not installed in the target; the certificates are "
                                    "written but not in the trust store"))
        return
    if not can_run_in(ctx.target):
        ctx.problems.append(Problem(key, "update-ca-certificates cannot run in a target "
                                    "without /bin/sh; the trust store is not updated"))
        return
    argv = ["update-ca-certificates", *(["--fresh"] if fresh else [])]
    run = run_captured(ctx.target, argv, timeout=300)
    if run.returncode != 0 or run.timed_out:
        ctx.problems.append(Problem(key, f"update-ca-certificates failed (status "
                                    f"{run.returncode}): {run.output.strip()[-300:]}"))


def handle(ctx: ModuleContext) -> None:
    found = settings(ctx)
    if found is None:
        return
    key, cfg = found
    remove = cfg.get("remove_defaults", cfg.get("remove-defaults", False))
    if not isinstance(remove, bool):
        ctx.problems.append(Problem(f"{key}.remove_defaults", "must be true or false; "
                                    "the default certificates are kept"))
        remove = False
    trusted = cfg.get("trusted", [])
    if not isinstance(trusted, list):
        ctx.problems.append(Problem(f"{key}.trusted", "must be a list of PEM certificates; "
                                    "none added"))
        trusted = []
    certs: list[str] = []
    for index, entry in enumerate(trusted):
        try:
            certs.append(pem_certificates(entry))
        except CertificateError as exc:
            ctx.problems.append(Problem(f"{key}.trusted[{index}]", f"{exc}; left out"))
    if not certs and not remove:
        return
    remove_old_local_certs(ctx)
    for number, pem in enumerate(certs, start=1):
        ctx.target.write(f"{LOCAL_DIR}/{FILE_PREFIX}{number}.crt", pem, mode=0o644)
    if remove:
        disable_defaults(ctx)
    ctx.log.info("ca_certs: %d certificates added%s", len(certs),
                 ", default certificates disabled" if remove else "")
    update_store(ctx, key, fresh=remove)


MODULE = ModuleSpec(
    name="ca_certs",
    stage=Stage.INIT,
    order=55,
    frequency=Frequency.PER_INSTANCE,
    schema=SCHEMA,
    handle=handle,
    activate_keys=("ca_certs", "ca-certs"),
    aliases=("ca-certs",),
)
