"""The per-instance cache of processed user-data (late/userdatacache.py)."""

from __future__ import annotations

import datetime
import gzip
import json
import stat
from pathlib import Path

from bootseed.contract.seedcache import Seed
from bootseed.late import userdatacache
from bootseed.late.model import InstanceInfo
from bootseed.late.registry import load_registry
from bootseed.late.target import TargetRoot
from bootseed.late.userdata.engine import process
from bootseed.late.userdata_flow import build_config

from testsupport.targetfs import make_target

BOUNDARY = "==BOUNDARY=="
CLOUD_CONFIG = """#cloud-config
hostname: cached
when: 2026-12-01
stamp: 2026-12-01 02:00:00
blob: !!binary aGVsbG8=
1: int key
ratio: 0.1
flags: [true, "true", 1, "1", null]
runcmd:
  - echo hi
"""
SCRIPT = "#!/bin/sh\necho script\n"
MULTIPART = (
    f"Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\nMIME-Version: 1.0\n\n"
    f"--{BOUNDARY}\nContent-Type: text/cloud-config\n\n{CLOUD_CONFIG}\n"
    f"--{BOUNDARY}\nContent-Type: text/x-shellscript\n"
    f"Content-Disposition: attachment; filename=\"run.sh\"\n\n{SCRIPT}\n"
    f"--{BOUNDARY}\nContent-Type: text/x-not-handled\n\nwhatever\n"
    f"--{BOUNDARY}--\n"
).encode()


def test_a_result_reads_back_exactly() -> None:
    for raw in (MULTIPART, gzip.compress(MULTIPART), CLOUD_CONFIG.encode(),
                b"#cloud-config\nruncmd: [\n"):
        result = process(raw, instance_data={"v1": {"instance_id": "i-1"}})
        doc = json.loads(json.dumps(userdatacache.to_document("k", result)))
        back = userdatacache.from_document(doc, "k")
        assert back == result
        assert back is not None and back.to_json() == result.to_json()
    cfg = process(CLOUD_CONFIG.encode()).cloud_config
    assert cfg["when"] == datetime.date(2026, 12, 1) and cfg["blob"] == b"hello"
    assert cfg[1] == "int key" and cfg["flags"] == [True, "true", 1, "1", None]
    doc = json.loads(json.dumps(userdatacache.to_document("k", process(CLOUD_CONFIG.encode()))))
    assert userdatacache.from_document(doc, "other key") is None
    assert userdatacache.from_document({**doc, "format": 0}, "k") is None
    assert userdatacache.from_document({**doc, "parts": [["x"]]}, "k") is None


def test_the_key_follows_every_input() -> None:
    data = {"v1": {"instance_id": "i-1"}}
    key = userdatacache.cache_key(MULTIPART, None, data)
    assert userdatacache.cache_key(MULTIPART, None, {"v1": {"instance_id": "i-1"}}) == key
    assert userdatacache.cache_key(MULTIPART + b"\n", None, data) != key
    assert userdatacache.cache_key(MULTIPART, 0, data) != key
    assert userdatacache.cache_key(MULTIPART, None, {"v1": {"instance_id": "i-2"}}) != key


def _build(target: TargetRoot, idir: Path, user_data: bytes) -> tuple[dict, list]:
    seed = Seed(source="nocloud", payloads={"user-data": user_data,
                                            "meta-data": b"instance-id: i-1\n"})
    built = build_config(seed, InstanceInfo("i-1"), target, idir, {"v1": {}},
                         load_registry(lazy=True), validate=False)
    return built.config, built.problems


def test_build_config_uses_the_cache_until_the_input_changes(tmp_path: Path) -> None:
    target = make_target(tmp_path / "root")
    idir = tmp_path / "instance"
    cfg, problems = _build(target, idir, MULTIPART)
    cache = idir / "user-data.processed.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert cfg["hostname"] == "cached"
    # A second build reads the file: what it holds is what comes back.
    doc = json.loads(cache.read_text())
    doc["cloud_config"] = userdatacache.encode({"hostname": "from-the-cache"})
    cache.write_text(json.dumps(doc))
    again, again_problems = _build(target, idir, MULTIPART)
    assert again == {"hostname": "from-the-cache"}
    assert again_problems == problems
    # Changed input: processed again, the file rewritten.
    changed = MULTIPART.replace(b"hostname: cached", b"hostname: changed")
    assert _build(target, idir, changed)[0]["hostname"] == "changed"
    assert json.loads(cache.read_text())["key"] != doc["key"]
    # A damaged file is processed again and replaced.
    cache.write_text("{not json")
    assert _build(target, idir, changed)[0]["hostname"] == "changed"
    assert json.loads(cache.read_text())["format"] == userdatacache.FORMAT


def test_payloads_with_urls_and_values_without_an_exact_form_are_not_cached(
        tmp_path: Path) -> None:
    target = make_target(tmp_path / "root")
    idir = tmp_path / "instance"
    _build(target, idir, b"#include\nhttp://127.0.0.1:9/absent.yaml\n")
    assert not (idir / "user-data.processed.json").exists()
    _build(target, idir, b"#cloud-config\nitems: [1]\n")
    assert (idir / "user-data.processed.json").exists()
    # YAML's !!set has no exact form in the file: the result is used, the stale file removed.
    cfg, _ = _build(target, idir, b"#cloud-config\nitems: !!set {a, b}\n")
    assert cfg["items"] == {"a", "b"}
    assert not (idir / "user-data.processed.json").exists()
