"""End-to-end: the early stage inside the initramfs of a real boot.

Each boot asks the guest's lab report for ``/run/bootseed/seed.json`` (the cache the
initramfs stage wrote, moved onto the real root with /run) and checks the stage's
own record in it, then what the lab's servers saw.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

from .conftest import EXAMPLE_SEED

pytestmark = pytest.mark.boot

SEED_JSON = "/run/bootseed/seed.json"
INSTANCE_ID = "iid-bootseed-demo-0001"


def boot(lab: BootLab, **options: Any) -> tuple[BootResult, dict[str, Any]]:
    result = lab.boot(BootOptions(report_files=[SEED_JSON], **options))
    report = result.report
    assert report is not None, result.summary()
    raw = report.file_bytes(SEED_JSON)
    assert raw is not None, f"no seed cache in the guest\n{result.summary()}"
    return result, json.loads(raw)


def early_action(doc: dict[str, Any]) -> dict[str, Any]:
    (action,) = [a for a in doc["actions"] if a.get("action") == "early-stage"]
    return dict(action)


def timing_names(doc: dict[str, Any]) -> set[str]:
    return {t["name"] for t in doc["timings"]}


def test_ec2_seed_fetched_in_initramfs_and_applied_without_second_fetch(lab: BootLab) -> None:
    result, doc = boot(lab, imds_dir=EXAMPLE_SEED)
    assert doc["source"] == "ec2" and doc["stage"] == "early", result.summary()
    assert doc["instance_id"] == INSTANCE_ID
    assert {"early.cmdline", "early.network-up", "early.discover", "early.network-down",
            "early.total"} <= timing_names(doc)
    action = early_action(doc)
    # The package's default: pyroute2's netlink and the stage's own DHCPv4 (klibc's
    # ipconfig is the fallback when pyroute2 is left out).
    assert action["wall_ms"] and action["network"]["backend"] == "pyroute2"
    assert action["network"]["method"] == "dhcp"
    assert action["network"]["teardown"].endswith("down")
    # Applied by the late agent from the cache...
    assert result.ok, result.summary()
    assert (result.report.status or {}).get("source") == "ec2"  # type: ignore[union-attr]
    # ...without asking the metadata service again: every request the mock logged is one
    # the early stage counted, and the token and user-data were asked for once.
    assert len(result.imds_requests) == doc["metadata"]["imds"]["requests"]
    assert [r.method for r in result.imds_requests].count("PUT") == 1
    assert sum(r.path.endswith("/user-data") for r in result.imds_requests) == 1


def test_nocloud_url_on_the_command_line_fetched_early(lab: BootLab) -> None:
    result, doc = boot(lab, nocloud_dir=EXAMPLE_SEED)
    assert doc["source"] == "nocloud" and doc["stage"] == "early", result.summary()
    assert doc["payloads"]["user-data"] > 0
    assert "early.network-up" in timing_names(doc)
    paths = [r.path for r in result.seed_requests]
    assert len(paths) == len(set(paths)), f"a seed file was fetched twice: {paths}"
    assert result.ok, result.summary()


def test_no_seed_brings_up_no_network(lab: BootLab) -> None:
    result, doc = boot(lab)
    assert doc["source"] == "none" and doc["problems"] == [], result.summary()
    action = early_action(doc)
    assert action["network"] is None
    assert action["decision"].startswith("network not needed")
    assert "early.network-up" not in timing_names(doc)
    assert "bootseed-early: no seed in" in result.console_text()


def test_broken_seed_url_boot_finishes_and_status_carries_the_error(lab: BootLab) -> None:
    url = "http://169.254.100.1:81/"
    result, doc = boot(lab, kernel_args=[f"ds=nocloud;s={url}"])
    assert doc["source"] == "none"
    assert any("169.254.100.1:81" in json.dumps(p) for p in doc["problems"]), doc["problems"]
    report = result.report
    assert report is not None and report.raw.get("multi_user_reached"), result.summary()
    assert any("169.254.100.1:81" in json.dumps(p) for p in report.problems), result.summary()
