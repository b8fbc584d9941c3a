import base64
import json
from pathlib import Path

import pytest
from bootseed.image_builder.guest import report as guest
from bootseed.image_builder.serialreport import ReportError, extract_reports


def _document(**status) -> dict:
    base = {"state": "done", "source": "nocloud", "instance_id": "iid-1", "no_seed": False,
            "modules": [{"name": "write_files", "status": "ok", "duration": 0.1,
                         "error": None}], "problems": [], "stages": {}}
    base.update(status)
    return {"format": 1, "hostname": "h1", "status": {"rc": 0, "json": base, "stderr": "",
                                                      "error": ""},
            "users": [{"name": "ada", "authorized_keys": ["ssh-ed25519 AAA x"]}],
            "files": {"/etc/x": {"size": 2, "b64": base64.b64encode(b"hi").decode()},
                      "/missing": {"error": "No such file or directory"}}}


def test_parse_cmdline_takes_only_lab_options():
    options = guest.parse_cmdline("root=LABEL=x bootseed.lab=1 bootseed.lab.files=/a,/b "
                                  "bootseed.lab.poweroff=0 ds=nocloud")
    assert options == {"files": "/a,/b", "poweroff": "0"}


def test_emit_then_extract_round_trip(tmp_path: Path):
    device = tmp_path / "ttyS0"
    device.write_text("")
    guest.emit(_document(), device=str(device))
    console = "[    1.0] boot noise\n" + device.read_text() + "[   9.1] more noise\n"
    (report,) = extract_reports(console)
    assert report.configured
    assert report.hostname == "h1"
    assert report.file_bytes("/etc/x") == b"hi"
    assert report.file_bytes("/missing") is None
    assert report.user("ada")["authorized_keys"] == ["ssh-ed25519 AAA x"]


def test_kernel_lines_and_ansi_inside_the_report_are_dropped():
    text = json.dumps(_document())
    cut = len(text) // 2
    console = (f"\x1b[0;32m OK \x1b[0m]\r\n{guest.BEGIN_MARKER}\r\n{text[:cut]}\n"
               f"[   42.123456] random: crng init done\n{text[cut:]}\n{guest.END_MARKER}\n")
    (report,) = extract_reports(console)
    assert report.state == "done"


def test_module_errors_and_states():
    doc = _document(modules=[{"name": "runcmd", "status": "error", "error": "exit 1"}])
    (report,) = extract_reports(f"{guest.BEGIN_MARKER}\n{json.dumps(doc)}\n{guest.END_MARKER}")
    assert not report.configured
    assert [m["name"] for m in report.module_errors] == ["runcmd"]
    doc = _document(state="error", modules=[])
    (report,) = extract_reports(f"{guest.BEGIN_MARKER}\n{json.dumps(doc)}\n{guest.END_MARKER}")
    assert not report.configured


def test_missing_status_is_explained():
    doc = {"format": 1, "status": {"rc": 127, "json": None, "stderr": "bootseed: not found\n",
                                   "error": ""}}
    (report,) = extract_reports(f"{guest.BEGIN_MARKER}\n{json.dumps(doc)}\n{guest.END_MARKER}")
    assert not report.configured
    assert report.status_problem == "`bootseed status` exited 127: bootseed: not found"


def test_several_reports_and_broken_ones():
    one = f"{guest.BEGIN_MARKER}\n{json.dumps(_document())}\n{guest.END_MARKER}\n"
    assert len(extract_reports(one + "reboot\n" + one)) == 2
    assert extract_reports("no report here") == []
    with pytest.raises(ReportError, match="no end marker"):
        extract_reports(f"{guest.BEGIN_MARKER}\n{{\"a\": 1")
    with pytest.raises(ReportError, match="not JSON"):
        extract_reports(f"{guest.BEGIN_MARKER}\n{{\"a\": \n{guest.END_MARKER}")


def test_file_contents_probe(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    path.chmod(0o640)
    result = guest.file_contents([str(path), str(tmp_path / "nope")])
    assert base64.b64decode(result[str(path)]["b64"]) == b"data"
    assert result[str(path)]["mode"] == "0640"
    assert "error" in result[str(tmp_path / "nope")]


def test_generator_left_bootseed_out():
    doc = {"format": 1, "generator": "disabled: no seed cache, no seed on the kernel command "
           "line, no seed directory, disc or cloud",
           "status": {"rc": None, "json": None, "stderr": "", "error": "", "skipped": True}}
    (report,) = extract_reports(f"{guest.BEGIN_MARKER}\n{json.dumps(doc)}\n{guest.END_MARKER}")
    assert report.not_run and report.no_seed and report.configured
    assert report.state == "not-run"
    assert report.status_problem == ""
    doc["generator"] = "disabled: bootseed=off on the kernel command line"
    (report,) = extract_reports(f"{guest.BEGIN_MARKER}\n{json.dumps(doc)}\n{guest.END_MARKER}")
    assert report.not_run and not report.no_seed and not report.configured


def test_generator_verdict_file(tmp_path: Path):
    path = tmp_path / "verdict"
    assert guest.generator_verdict(str(path)) is None
    path.write_text("enabled: ds=nocloud on the kernel command line\n")
    assert guest.generator_verdict(str(path)) == "enabled: ds=nocloud on the kernel command line"


def test_boot_counter_and_next_action(tmp_path: Path):
    counter = str(tmp_path / "lab" / "boot-count")
    assert [guest.count_boot(counter) for _ in range(3)] == [1, 2, 3]
    assert guest.next_action({}, 1) == "poweroff"
    assert guest.next_action({"reboots": "2"}, 1) == "reboot"
    assert guest.next_action({"reboots": "2"}, 2) == "reboot"
    assert guest.next_action({"reboots": "2"}, 3) == "poweroff"
    assert guest.next_action({"poweroff": "0", "reboots": "2"}, 1) == "stay"
    assert guest.next_action({"reboots": "x"}, 1) == "poweroff"
