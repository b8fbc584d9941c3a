"""Run cloud-init's own user-data processing over inputs; print JSON (helper of
``bench/userdata_vs_cloudinit.py``, not a bench by itself).

Runs under the system ``python3`` with the extracted Debian package's
``usr/lib/python3/dist-packages`` first on ``sys.path`` (argument 1). Reads
``{"inputs": [{"name": ..., "path": ...}], "runs": N}`` on stdin. For each
input it does what cloud-init's init stage does with user-data, using
cloud-init's code and nothing of ours: ``UserDataProcessor.process`` (MIME,
gzip, archives, includes), then the default part handlers walked over the
message with ``handlers.walk``/``walker_callback`` between ``call_begin`` and
``call_end``, as ``stages.Init._do_handlers`` does; the cloud-config handler
writes the merged cloud-config to the instance dir, which is read back. The
time is the best of N runs of that, in-process (imports excluded; their time
is reported once).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import_started = time.perf_counter()
sys.path.insert(0, sys.argv[1])

import yaml  # noqa: E402
from cloudinit import handlers, helpers, user_data  # noqa: E402
from cloudinit.handlers.boot_hook import BootHookPartHandler  # noqa: E402
from cloudinit.handlers.cloud_config import CloudConfigPartHandler  # noqa: E402
from cloudinit.handlers.jinja_template import JinjaTemplatePartHandler  # noqa: E402
from cloudinit.handlers.shell_script import ShellScriptPartHandler  # noqa: E402
from cloudinit.handlers.shell_script_by_frequency import (  # noqa: E402
    ShellScriptByFreqPartHandler,
)
from cloudinit.settings import PER_ALWAYS, PER_INSTANCE, PER_ONCE  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - import_started
INSTANCE_ID = "iid-bench-userdata"


class _Datasource:
    """The one thing the paths and handlers ask of a datasource here."""

    def get_instance_id(self) -> str:
        return INSTANCE_ID


def process_once(blob: bytes, work: Path) -> dict[str, Any]:
    paths = helpers.Paths({"cloud_dir": str(work / "cloud"), "run_dir": str(work / "run")},
                          ds=_Datasource())
    message = user_data.UserDataProcessor(paths).process(blob)
    opts: dict[str, Any] = {"paths": paths, "datasource": paths.datasource}
    cloud_config = CloudConfigPartHandler(**opts)
    shell = ShellScriptPartHandler(**opts)
    defaults = [cloud_config, shell,
                ShellScriptByFreqPartHandler(PER_ALWAYS, **opts),
                ShellScriptByFreqPartHandler(PER_INSTANCE, **opts),
                ShellScriptByFreqPartHandler(PER_ONCE, **opts),
                BootHookPartHandler(**opts),
                JinjaTemplatePartHandler(**opts, sub_handlers=[cloud_config, shell])]
    registry = helpers.ContentHandlers()
    for mod in defaults:
        registry.register(mod, overwrite=False)
    parts: list[dict[str, Any]] = []

    def record(data: dict[str, Any], filename: str, payload: Any, headers: dict[str, Any]) -> None:
        body = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) \
            else bytes(payload or b"")
        parts.append({"content_type": headers["Content-Type"], "filename": filename,
                      "sha256": hashlib.sha256(body).hexdigest()})
        handlers.walker_callback(data, filename, payload, headers)

    for _ctype, mod in registry.items():
        if mod not in registry.initialized:
            handlers.call_begin(mod, None, PER_INSTANCE)
            registry.initialized.append(mod)
    try:
        handlers.walk(message, record, data={
            "handlers": registry, "handlerdir": str(work / "handlers"), "data": None,
            "frequency": PER_INSTANCE, "handlercount": 0, "excluded": []})
    finally:
        for _ctype, mod in registry.items():
            if mod in registry.initialized:
                registry.initialized.remove(mod)
                handlers.call_end(mod, None, PER_INSTANCE)
    merged_path = Path(paths.get_ipath("cloud_config"))
    merged = yaml.safe_load(merged_path.read_text()) if merged_path.exists() else None
    return {"parts": parts, "cloud_config": merged or {}}


def main() -> int:
    request = json.load(sys.stdin)
    runs = max(1, int(request.get("runs", 5)))
    results = []
    for item in request["inputs"]:
        blob = Path(item["path"]).read_bytes()
        best = float("inf")
        outcome: dict[str, Any] = {}
        try:
            for _ in range(runs):
                with tempfile.TemporaryDirectory(prefix="ci-userdata-") as tmp:
                    started = time.perf_counter()
                    outcome = process_once(blob, Path(tmp))
                    best = min(best, time.perf_counter() - started)
            outcome["seconds"] = best
        except Exception as exc:
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        outcome["name"] = item["name"]
        results.append(outcome)
    json.dump({"import_seconds": IMPORT_SECONDS, "results": results}, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
