"""Remote syslog from the first second, in one real boot.

With ``bootseed.syslog=`` on the kernel command line the lab's syslog receiver on the
host (``bootseed.image_builder.mocks.syslogd``, reached through a guestfwd address)
gets lines from the initramfs stage (while its network is up for the EC2 seed), from
the late agent (including lines it wrote in the local stage, before the network was
up) and from the system logger forwarding a system service's lines (rsyslog, pointed
there by the agent before its first module). The seed's ``rsyslog`` key adds a rule
file and a remote of its own, ``output`` sends the agent's output to a file, and the
user script output lands in ``/var/log/user_data.log`` (0600) with the old name a link.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bootseed.image_builder import labnet
from bootseed.image_builder.lab import BootLab, BootOptions
from bootseed.image_builder.mocks.syslogd import SyslogMessage

pytestmark = pytest.mark.boot

INSTANCE_ID = "i-0syslog0000000001"
USER_DATA = f"""#cloud-config
rsyslog:
  configs:
    - filename: 30-lab-extra.conf
      content: "# written by the rsyslog module of the lab seed"
  remotes:
    lab: "local3.* @@{labnet.SYSLOG_ADDR}:{labnet.SYSLOG_PORT}"
output:
  all: ">> /var/log/bootseed-output.log"
runcmd:
  - echo user-script-output-marker
  - logger -t marker "system logger marker line"
  - logger -p local3.info -t viaremote "sent by the seed's own remote"
  - readlink /var/log/user-data.log > /run/user-data-link
"""
REPORT_FILES = [
    "/var/log/user_data.log",
    "/run/user-data-link",
    "/etc/rsyslog.d/05-bootseed-remote.conf",
    "/etc/rsyslog.d/20-cloud-config.conf",
    "/etc/rsyslog.d/30-lab-extra.conf",
    "/var/log/bootseed-output.log",
]


def texts(messages: list[SyslogMessage], app: str) -> list[str]:
    return [m.message for m in messages if m.app_name == app]


def test_early_late_and_system_lines_reach_the_remote_syslog(lab: BootLab,
                                                              tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "meta-data").write_text(json.dumps({"instance-id": INSTANCE_ID,
                                                "local-hostname": "syslog-guest"}))
    (seed / "user-data").write_text(USER_DATA)
    result = lab.boot(BootOptions(imds_dir=seed, syslog=True, report_files=REPORT_FILES,
                                  kernel_args=[f"bootseed.syslog={labnet.syslog_url()}"]))
    report = result.report
    assert report is not None and result.ok, result.summary()
    got = result.syslog_messages
    apps = sorted({m.app_name for m in got})
    where = f"{result.summary()}\nsyslog apps: {apps}"

    # The initramfs stage, RFC 5424, while its own network was up.
    early = [m for m in got if m.app_name == "bootseed-early"]
    assert early, where
    assert {m.format for m in early} == {"rfc5424"} and all(m.hostname for m in early)
    assert any(f"seed from ec2 (instance {INSTANCE_ID})" in m.message for m in early), where

    # The late agent: a line from the local stage (written before the network was up,
    # sent once it was) and one from the final stage's process.
    late = texts(got, "bootseed")
    assert any("stage local: start" in line for line in late), where
    assert any("stage final: start" in line for line in late), where
    assert all(m.hostname == "syslog-guest" for m in got if m.app_name == "bootseed"
               and "stage final" in m.message), where

    # The system logger forwards what the system's services log (rsyslog, RFC 3164).
    marker = [m for m in got if m.app_name == "marker"]
    assert marker and marker[0].message == "system logger marker line", where
    assert marker[0].hostname == "syslog-guest" and marker[0].format == "rfc3164"
    assert any(m.app_name in ("systemd", "sshd", "kernel") for m in got), where
    # local3 goes out through both the command line's rule and the seed's own remote.
    assert len(texts(got, "viaremote")) >= 2, where

    def file_text(path: str) -> str:
        data = report.file_bytes(path)  # type: ignore[union-attr]
        assert data is not None, f"{path}: {report.file_entry(path)}"  # type: ignore[union-attr]
        return data.decode()

    assert f'target="{labnet.SYSLOG_ADDR}"' in file_text("/etc/rsyslog.d/05-bootseed-remote.conf")
    remotes = file_text("/etc/rsyslog.d/20-cloud-config.conf")
    assert f"local3.* @@{labnet.SYSLOG_ADDR}:{labnet.SYSLOG_PORT} # lab" in remotes
    assert "rsyslog module" in file_text("/etc/rsyslog.d/30-lab-extra.conf")

    # User script output: the seed's file name, 0600, the old name a link to it.
    entry = report.file_entry("/var/log/user_data.log")
    assert entry is not None and entry.get("mode") == "0600", entry
    assert "user-script-output-marker" in file_text("/var/log/user_data.log")
    assert file_text("/run/user-data-link").strip() == "user_data.log"

    # output: the agent's own output of every stage in the file.
    output = file_text("/var/log/bootseed-output.log")
    assert "stage config" in output and "stage final" in output, output[-2000:]
