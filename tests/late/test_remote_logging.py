"""The late agent and ``bootseed.syslog=``: its own lines through a bounded queue to a real
receiver on 127.0.0.1, and the rsyslog drop-in that points the system logger there."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from bootseed.contract.remotesyslog import SyslogTarget
from bootseed.image_builder.mocks.syslogd import SyslogReceiver
from bootseed.late import rsyslogd
from bootseed.late.redact import RedactingFilter, Redactor
from bootseed.late.remotelog import MAX_QUEUED, RemoteSyslogHandler

from testsupport.targetfs import make_target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(f"bootseed.test.{name}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return log


def test_lines_written_before_the_receiver_exists_arrive_later_redacted() -> None:
    port = free_port()
    redactor = Redactor(["hunter2-secret"])
    handler = RemoteSyslogHandler(SyslogTarget("tcp", "127.0.0.1", port), hostname="vm1",
                                  retry_s=0.1)
    handler.addFilter(RedactingFilter(redactor))
    log = logger_with(handler, "late")
    log.info("stage local: start (password hunter2-secret)")
    log.debug("debug lines stay local")
    log.warning("a warning")
    assert handler.pending == 2  # nobody listens yet: kept, not dropped
    with SyslogReceiver(port=port) as receiver:
        assert receiver.wait_for(lambda got: len(got) == 2, timeout=10)
        handler.close()
        got = receiver.snapshot()
    assert [m.message for m in got] == [
        "bootseed.test.late: stage local: start (password <redacted>)",
        "bootseed.test.late: a warning"]
    assert [(m.app_name, m.hostname, m.severity) for m in got] == [
        ("bootseed", "vm1", 6), ("bootseed", "vm1", 4)]


def test_a_dead_destination_costs_the_run_a_bounded_close() -> None:
    handler = RemoteSyslogHandler(SyslogTarget("tcp", "127.0.0.1", free_port()))
    log = logger_with(handler, "dead")
    for n in range(MAX_QUEUED + 10):
        log.info("line %d", n)
    assert handler.overflowed >= 10
    handler.close()  # returns within FLUSH_S though nothing was ever delivered
    assert handler.pending > 0


def test_udp_lines_go_out_as_datagrams() -> None:
    with SyslogReceiver() as receiver:
        handler = RemoteSyslogHandler(SyslogTarget("udp", "127.0.0.1", receiver.port))
        logger_with(handler, "udp").error("over udp")
        assert receiver.wait_for(lambda got: len(got) == 1, timeout=5)
        handler.close()
        (message,) = receiver.snapshot()
    assert message.protocol == "udp" and message.severity == 3


def test_forwarding_dropin_written_and_removed_with_the_parameter(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/rsyslogd").write_text("")
    syslog = SyslogTarget("tcp", "169.254.100.6", 514)
    assert rsyslogd.configure_forwarding(target, syslog) == []
    text = target.read_text(rsyslogd.FORWARD_DROPIN)
    assert ('*.* action(type="omfwd" target="169.254.100.6" port="514" protocol="tcp" '
            'queue.type="LinkedList"') in text
    assert rsyslogd.configure_forwarding(target, None) == []
    assert not target.exists(rsyslogd.FORWARD_DROPIN)


def test_without_rsyslog_the_status_says_journald_cannot_forward(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    problems = rsyslogd.configure_forwarding(target, SyslogTarget("udp", "10.0.0.1", 514))
    assert [p.where for p in problems] == [rsyslogd.WHERE]
    assert "journald cannot send" in problems[0].message
    assert not target.exists(rsyslogd.FORWARD_DROPIN)
