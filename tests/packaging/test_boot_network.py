"""Boot with the network cable out: the units must not hold up the boot.

A cidata disc carries the seed (no network needed to find it), and the guest has no NIC
at all (QEMU ``-nic none``): no route, no DHCP answer, ever. bootseed.service must signal
READY=1 after the local stage, so multi-user.target is reached at once; the same process
waits for the network for its bound (30 s in the unit), reports the missing network in
the status, and runs the config stage anyway; bootseed-final.service runs after
multi-user.target once that process is done.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from bootseed.image_builder import labnet
from bootseed.image_builder.build import BuildOptions, build_image
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult

pytestmark = pytest.mark.boot

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SEED = REPO / "examples" / "nocloud"
NETWORK_BOUND = 30.0  # --network-timeout in systemd/bootseed.service


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> BootLab:
    if os.geteuid() != 0:
        pytest.skip("building the lab image needs root (mmdebstrap --mode=root)")
    out = tmp_path_factory.mktemp("image")
    manifest = build_image(BuildOptions(out_dir=out, checksums=False), quiet=True)
    raw = manifest.file("raw")
    assert raw is not None
    return BootLab(Path(raw.path), tmp_path_factory.mktemp("boots"))


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def test_boot_without_network_is_bounded_and_reported(
    lab: BootLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lab has no "no network" option: its NIC argument becomes None, which QEMU
    # gets as "-nic none" (qemu.VmSpec).
    monkeypatch.setattr(labnet, "nic_argument", lambda *args, **kwargs: None)
    result = lab.boot(BootOptions(cidata_dir=EXAMPLE_SEED))
    qemu_argv = (result.workdir / "qemu.argv.json").read_text()
    assert '"none"' in qemu_argv and "user," not in qemu_argv, qemu_argv
    report = result.report
    assert report is not None, _diagnose(result)
    assert report.generator.startswith("enabled"), _diagnose(result)
    status = report.status or {}
    assert status.get("source") == "nocloud", _diagnose(result)
    # Everything applies except what needs the network: the example seed phones home.
    failed = sorted(m.get("name", "?") for m in report.module_errors)
    assert failed == ["phone_home"], _diagnose(result)
    assert report.state == "error", _diagnose(result)

    problems = [p for p in report.problems if isinstance(p, dict)
                and p.get("where") == "network"]
    assert problems, f"no network problem reported: {report.problems}"
    assert "not up after" in problems[0]["message"]

    # The network wait is bounded: from READY=1 (the local stage's end) to the end of
    # the run, about NETWORK_BOUND, not more.
    multi_user = report.raw.get("multi_user_reached")
    finished = status.get("boot_finished_uptime")
    assert isinstance(multi_user, float) and isinstance(finished, float), report.raw
    ready, done = status["stages"]["local"]["end"], status["finished"]
    assert NETWORK_BOUND * 0.8 < done - ready < NETWORK_BOUND + 60, (ready, done)
    # ... and multi-user.target came before the run ended, not after the wait.
    assert multi_user < finished, (multi_user, finished)
    # multi-user.target did not wait for the network: systemd reached it (its own
    # timestamp) before the wait ended (the agent's console line, guest uptime). The
    # console's order of lines is no clock: systemd's status lines come late under load.
    console = result.console_text()
    network_start = re.search(r"\[\s*(\d+\.\d+)\] .*stage network: start", console)
    assert network_start is not None, _diagnose(result)
    assert multi_user < float(network_start.group(1)), "multi-user waited for the network"
    print(f"network-out boot: multi-user at {multi_user:.1f}s, bootseed finished at "
          f"{finished:.1f}s guest uptime, {result.seconds:.0f}s wall")
