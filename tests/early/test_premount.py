"""``python3 -m bootseed.early premount`` end to end, in a two-namespace lab: the network
is brought up only when the seed needs it, the seed lands in the cache with the stage's
own timings and decisions, and nothing ever makes it fail the boot."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.contract.seedcache import read_seed_cache

from tests.early.test_net_lab import SERVER_IP, NetnsPair, needs_netns, netns_lab

USER_DATA = b"#cloud-config\nhostname: from-early\n"


@pytest.fixture
def lab() -> Iterator[NetnsPair]:
    with netns_lab() as pair:
        yield pair


def premount(lab: NetnsPair, tmp_path: Path, cmdline: str, *extra: str,
             ) -> tuple[dict[str, object], str]:
    out = tmp_path / "run-bootseed"
    dmi = tmp_path / "dmi"
    dmi.mkdir(exist_ok=True)
    result = lab.run_client([sys.executable, "-m", "bootseed.early", "premount", "--cmdline",
                             cmdline, "--out", str(out), "--dmi-dir", str(dmi),
                             "--no-disc-scan", "--carrier-timeout", "3", "--dhcp-timeout", "5",
                             *extra])
    assert result.returncode == 0, result.stderr
    manifest = out / "seed.json"
    doc = json.loads(manifest.read_text()) if manifest.exists() else {}
    return doc, result.stderr


def early_action(doc: dict[str, object]) -> dict[str, object]:
    actions = doc["actions"]
    assert isinstance(actions, list)
    found = [a for a in actions if a.get("action") == "early-stage"]
    assert len(found) == 1
    return dict(found[0])


def timing_names(doc: dict[str, object]) -> list[str]:
    timings = doc["timings"]
    assert isinstance(timings, list)
    return [t["name"] for t in timings]


def seed_dir(tmp_path: Path, meta: dict[str, str]) -> Path:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "user-data").write_bytes(USER_DATA)
    (seed / "meta-data").write_text(json.dumps(meta))
    return seed


@needs_netns
@pytest.mark.root
def test_no_seed_touches_no_network(lab: NetnsPair, tmp_path: Path) -> None:
    lab.start_dhcp()
    doc, stderr = premount(lab, tmp_path, "root=LABEL=x ro quiet")
    assert doc["source"] == "none" and doc["stage"] == "early"
    action = early_action(doc)
    assert action["network"] is None
    assert "network not needed" in str(action["decision"])
    assert "early.network-up" not in timing_names(doc)
    assert "DHCPDISCOVER" not in lab.dhcp_log()
    assert not lab.client_link_up()
    assert "bootseed-early: no seed in" in stderr


@needs_netns
@pytest.mark.root
def test_nocloud_url_fetched_over_dhcp_then_network_left_clean(lab: NetnsPair,
                                                               tmp_path: Path) -> None:
    lab.start_dhcp()
    server = lab.serve("static", seed_dir(tmp_path, {"instance-id": "nc-1"}), 8000)
    doc, _ = premount(lab, tmp_path, f"ds=nocloud;s=http://{SERVER_IP}:8000/")
    log = server.stop()
    assert doc["source"] == "nocloud" and doc["instance_id"] == "nc-1"
    action = early_action(doc)
    net = action["network"]
    assert isinstance(net, dict)
    assert net["interface"] == "eth0" and net["method"] == "dhcp"
    assert "removed" in str(net["teardown"])
    assert {"early.cmdline", "early.network-up", "early.discover", "early.network-down",
            "early.total"} <= set(timing_names(doc))
    assert action["wall_ms"] is not None
    assert any(r["path"] == "/user-data" for r in log)
    cached = read_seed_cache(tmp_path / "run-bootseed")
    assert cached is not None and cached.payloads["user-data"] == USER_DATA
    assert lab.client_addresses() == [] and not lab.client_link_up()


@needs_netns
@pytest.mark.root
def test_ec2_seed_fetched_with_imdsv2(lab: NetnsPair, tmp_path: Path) -> None:
    lab.start_dhcp()
    imds = lab.serve("imds:v2-required",
                     seed_dir(tmp_path, {"instance-id": "i-0abc", "local-hostname": "e1"}), 8080)
    doc, _ = premount(lab, tmp_path, "bootseed.ds=ec2", "--ec2-endpoint",
                      f"http://{SERVER_IP}:8080")
    log = imds.stop()
    assert doc["source"] == "ec2" and doc["instance_id"] == "i-0abc"
    assert doc["stage"] == "early"
    assert any(r["method"] == "PUT" and r["path"] == "/latest/api/token" for r in log)
    assert any(r["path"].endswith("/user-data") for r in log)
    cached = read_seed_cache(tmp_path / "run-bootseed")
    assert cached is not None and cached.payloads["user-data"] == USER_DATA


@needs_netns
@pytest.mark.root
def test_broken_seed_url_is_reported_and_boot_goes_on(lab: NetnsPair, tmp_path: Path) -> None:
    lab.start_dhcp()
    doc, stderr = premount(lab, tmp_path, f"ds=nocloud;s=http://{SERVER_IP}:8009/")
    assert doc["source"] == "none"
    problems = doc["problems"]
    assert isinstance(problems, list) and problems
    assert any(f"{SERVER_IP}:8009" in p["message"] or f"{SERVER_IP}:8009" in p["where"]
               for p in problems)
    assert "problem(s)" in stderr


@needs_netns
@pytest.mark.root
def test_net_off_keeps_the_network_down_and_says_why(lab: NetnsPair, tmp_path: Path) -> None:
    lab.start_dhcp()
    doc, _ = premount(lab, tmp_path, f"ds=nocloud;s=http://{SERVER_IP}:8000/ bootseed.net=off")
    assert "bootseed.net=off" in str(early_action(doc)["decision"])
    assert any("bootseed.net=off" in p["message"] for p in doc["problems"])  # type: ignore
    assert "DHCPDISCOVER" not in lab.dhcp_log()


@needs_netns
@pytest.mark.root
def test_no_dhcp_answer_is_a_problem_not_a_hang(lab: NetnsPair, tmp_path: Path) -> None:
    doc, _ = premount(lab, tmp_path, f"ds=nocloud;s=http://{SERVER_IP}:8000/")
    assert doc["source"] == "none"
    assert any(p["where"] == "early network" and "no DHCP lease" in p["message"]
               for p in doc["problems"])  # type: ignore[union-attr]
    assert "early.network-up" in timing_names(doc)


def test_missing_proc_is_caught_and_written(tmp_path: Path) -> None:
    # No --cmdline and a /proc without cmdline: the stage fails before anything else,
    # and still writes seed.json and exits 0.
    import subprocess

    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "bootseed.early", "premount", "--proc",
                             str(tmp_path / "noproc"), "--out", str(out)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    doc = json.loads((out / "seed.json").read_text())
    action = early_action(doc)
    assert "cannot read" in str(action["error"])
    assert doc["problems"][0]["where"] == "early stage"
    assert "bootseed-early: error:" in result.stderr and "boot continues" in result.stderr


@needs_netns
@pytest.mark.root
@pytest.mark.parametrize("switch", ["bootseed.early=off", "bootseed=off"])
def test_turned_off_on_the_command_line_writes_nothing(lab: NetnsPair, tmp_path: Path,
                                                       switch: str) -> None:
    # In the lab namespace all the same: were the switch ignored, DHCP would start.
    lab.start_dhcp()
    doc, _ = premount(lab, tmp_path, f"{switch} ds=nocloud;s=http://{SERVER_IP}/")
    assert doc == {}
    assert not (tmp_path / "run-bootseed").exists()
    assert "DHCPDISCOVER" not in lab.dhcp_log()


def test_usage_error_is_one_line_and_nonzero() -> None:
    import subprocess

    result = subprocess.run([sys.executable, "-m", "bootseed.early", "premount",
                             "--dhcp-timeout", "0"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--dhcp-timeout" in result.stderr


SYSLOG_PROGRAM = r"""
import json, sys
from bootseed.image_builder.mocks.syslogd import SyslogReceiver
with SyslogReceiver(host=sys.argv[1], port=int(sys.argv[2])) as receiver:
    print("ready", flush=True)
    sys.stdin.read()
print(json.dumps([{"app": m.app_name, "host": m.hostname, "format": m.format,
                   "facility": m.facility, "message": m.message, "protocol": m.protocol}
                  for m in receiver.snapshot()]), flush=True)
"""


def syslog_receiver(lab: NetnsPair, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", lab.server, sys.executable, "-c",
                             SYSLOG_PROGRAM, SERVER_IP, str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def received(proc: subprocess.Popen[str]) -> list[dict[str, object]]:
    out, _ = proc.communicate("", timeout=20)
    return list(json.loads(out))


@needs_netns
@pytest.mark.root
@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_early_lines_reach_remote_syslog_while_the_network_is_up(
        lab: NetnsPair, tmp_path: Path, protocol: str) -> None:
    lab.start_dhcp()
    server = lab.serve("static", seed_dir(tmp_path, {"instance-id": "nc-syslog"}), 8000)
    receiver = syslog_receiver(lab, 5514)
    doc, _ = premount(lab, tmp_path, f"ds=nocloud;s=http://{SERVER_IP}:8000/ "
                      f"bootseed.syslog={protocol}://{SERVER_IP}:5514")
    server.stop()
    lines = received(receiver)
    assert doc["instance_id"] == "nc-syslog"
    assert lines and {line["app"] for line in lines} == {"bootseed-early"}
    assert {line["format"] for line in lines} == {"rfc5424"}
    assert {line["protocol"] for line in lines} == {protocol}
    assert all(line["facility"] == 1 and line["host"] for line in lines)
    texts = [str(line["message"]) for line in lines]
    # Lines from before the network was up are sent first, the summary last.
    assert "looking for the seed" in texts[0]
    assert any("network needed" in text for text in texts)
    assert "seed from nocloud (instance nc-syslog)" in texts[-1]
    net = early_action(doc)["network"]
    assert isinstance(net, dict)
    assert net["syslog"]["sent"] == len(lines) and net["syslog"]["dropped"] == 0


@needs_netns
@pytest.mark.root
def test_dead_remote_syslog_does_not_hold_the_boot(lab: NetnsPair, tmp_path: Path) -> None:
    lab.start_dhcp()
    server = lab.serve("static", seed_dir(tmp_path, {"instance-id": "nc-dead"}), 8000)
    started = time.monotonic()
    doc, _ = premount(lab, tmp_path, f"ds=nocloud;s=http://{SERVER_IP}:8000/ "
                      f"bootseed.syslog=tcp://{SERVER_IP}:5599")
    server.stop()
    assert doc["instance_id"] == "nc-dead"
    assert time.monotonic() - started < 30
    net = early_action(doc)["network"]
    assert isinstance(net, dict)
    assert net["syslog"]["sent"] == 0 and net["syslog"]["dropped"] > 0
