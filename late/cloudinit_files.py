"""The files cloud-init's users and tools read, in cloud-init 22.4's places and shapes.

Tools written for cloud-init (configuration management waiting for the first
boot, health checks, ``cloud-init status`` itself) look for::

    /run/cloud-init/status.json        v1: datasource, stage, and per stage
                                        (init-local, init, modules-init,
                                        modules-config, modules-final) start,
                                        finished, errors
    /run/cloud-init/result.json        v1: datasource, errors (written at the end)
    /run/cloud-init/instance-data.json            redacted instance data (0644)
    /run/cloud-init/instance-data-sensitive.json  full instance data (0600)
    /var/lib/cloud/data/instance-id    the current instance's id
    /var/lib/cloud/instance -> instances/<id>     with boot-finished in it at the end
    /var/log/cloud-init-output.log -> user_data.log  what scripts and commands print

bootseed's own files in ``/run/bootseed`` and ``/var/lib/bootseed`` stay the
source of truth; this module derives the cloud-init view from the same
:class:`RunStatus` and documents, so each fact is decided once. Every write
goes through :class:`TargetRoot`.
"""

from __future__ import annotations

import stat
from typing import Any

from bootseed.late import jsonout
from bootseed.late.redact import Redactor
from bootseed.late.status import RunStatus
from bootseed.late.target import TargetRoot

CLOUD_RUN_DIR = "/run/cloud-init"
CLOUD_STATE_DIR = "/var/lib/cloud"
STATUS_FILE = f"{CLOUD_RUN_DIR}/status.json"
RESULT_FILE = f"{CLOUD_RUN_DIR}/result.json"
INSTANCE_DATA_FILE = f"{CLOUD_RUN_DIR}/instance-data.json"
INSTANCE_DATA_SENSITIVE_FILE = f"{CLOUD_RUN_DIR}/instance-data-sensitive.json"
INSTANCE_LINK = f"{CLOUD_STATE_DIR}/instance"
INSTANCE_ID_FILE = f"{CLOUD_STATE_DIR}/data/instance-id"
# What user scripts and commands print: bootseed's user_data.log (a relative link
# in /var/log), where cloud-init's users tail cloud-init-output.log.
OUTPUT_LOG_LINK = "/var/log/cloud-init-output.log"
OUTPUT_LOG_TARGET = "user_data.log"

# bootseed's run stages by the names cloud-init gives the same points of the boot.
STAGE_NAMES: dict[str, str] = {
    "local": "init-local",
    "network": "init",
    "config": "modules-config",
    "final": "modules-final",
}
# cloud-init's stage for ``cloud-init modules --mode init``, which no boot runs; its
# status.json lists it all the same, never started (as cloud-init 22.4's does).
UNUSED_STAGE = "modules-init"


def _dump(doc: dict[str, Any]) -> str:
    return jsonout.dumps(doc, indent=2, sort_keys=True) + "\n"


def status_document(status: RunStatus) -> dict[str, Any]:
    """cloud-init's ``status.json``: ``stage`` names the stage running now, and is
    null once the run is over (the signal tools poll for)."""
    last_started = None
    v1: dict[str, Any] = {"datasource": status.source}
    for ours, theirs in STAGE_NAMES.items():
        timing = status.stages.get(ours)
        errors = [f"{m.name}: {m.error}" for m in status.modules
                  if m.stage == ours and m.status == "failed"]
        v1[theirs] = {"start": timing.start if timing else None,
                      "finished": timing.end if timing else None,
                      "errors": errors}
        if timing is not None:
            last_started = theirs
    v1[UNUSED_STAGE] = {"start": None, "finished": None, "errors": []}
    if status.errors:
        # The run's own errors belong to the stage that was going when they happened.
        where = last_started or STAGE_NAMES["local"]
        v1[where]["errors"] = [*v1[where]["errors"], *status.errors]
    running = status.state == "running" and status.stage is not None
    v1["stage"] = STAGE_NAMES.get(status.stage or "") if running else None
    return {"v1": v1}


def write_status(target: TargetRoot, status: RunStatus, redactor: Redactor) -> None:
    target.write(STATUS_FILE, _dump(redactor.data(status_document(status))), mode=0o644)


def write_result(target: TargetRoot, result: dict[str, Any]) -> None:
    """``result``: the document bootseed's own ``result.json`` holds (already redacted)."""
    target.write(RESULT_FILE, _dump(result), mode=0o644)


def write_instance_data(target: TargetRoot, sensitive: str, public: str) -> None:
    """The two instance-data texts exactly as bootseed's run directory has them."""
    target.write(INSTANCE_DATA_SENSITIVE_FILE, sensitive, mode=0o600)
    target.write(INSTANCE_DATA_FILE, public, mode=0o644)


def instance_dir(dir_name: str) -> str:
    return f"{CLOUD_STATE_DIR}/instances/{dir_name}"


def select_instance(target: TargetRoot, instance_id: str, dir_name: str) -> None:
    """``/var/lib/cloud/instance`` names the instance bootseed made current."""
    with target.open_dir(instance_dir(dir_name), create=True):
        pass
    target.write(INSTANCE_ID_FILE, instance_id + "\n", mode=0o644)
    target.symlink(INSTANCE_LINK, f"instances/{dir_name}")
    link_output_log(target)


def link_output_log(target: TargetRoot) -> None:
    """``cloud-init-output.log`` names bootseed's ``user_data.log``; a real file of that
    name (an image that ran cloud-init before) is left alone."""
    try:
        existing = target.lstat(OUTPUT_LOG_LINK)
    except FileNotFoundError:
        existing = None
    if existing is None or stat.S_ISLNK(existing.st_mode):
        target.symlink(OUTPUT_LOG_LINK, OUTPUT_LOG_TARGET)


def write_boot_finished(target: TargetRoot, dir_name: str, text: str) -> None:
    target.write(f"{instance_dir(dir_name)}/boot-finished", text, mode=0o644)
