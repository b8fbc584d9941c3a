"""``bootseed.syslog=``: the target grammar, the RFC 5424 line and the bounded sender,
against the lab's real syslog receiver on 127.0.0.1 (UDP and TCP)."""

from __future__ import annotations

import datetime
import socket
import time

import pytest
from bootseed.contract.cmdline import parse
from bootseed.contract.remotesyslog import (
    MAX_LINE,
    SyslogSender,
    SyslogTarget,
    SyslogTargetError,
    format_line,
    parse_target,
)
from bootseed.image_builder.mocks.syslogd import SyslogReceiver, parse_message, split_stream


@pytest.mark.parametrize(("value", "expected"), [
    ("udp://10.0.0.5", SyslogTarget("udp", "10.0.0.5", 514)),
    ("tcp://logs.example.org:6514", SyslogTarget("tcp", "logs.example.org", 6514)),
    ("UDP://[fd00::1]:10514", SyslogTarget("udp", "fd00::1", 10514)),
])
def test_targets_parse(value: str, expected: SyslogTarget) -> None:
    assert parse_target(value) == expected


@pytest.mark.parametrize("value", ["http://h:514", "udp://", "udp://h:99999", "tcp://h/x",
                                   "udp://user@h", "udp://bad_name!", "udp://h:0", "h:514"])
def test_bad_targets_are_refused(value: str) -> None:
    with pytest.raises(SyslogTargetError):
        parse_target(value)


def test_kernel_parameter_is_typed_and_a_bad_one_is_a_problem() -> None:
    params = parse("root=/dev/vda1 bootseed.syslog=tcp://169.254.100.6:514 quiet")
    assert params.syslog == SyslogTarget("tcp", "169.254.100.6", 514)
    assert params.syslog.url == "tcp://169.254.100.6:514"
    bad = parse("bootseed.syslog=ftp://x")
    assert bad.syslog is None
    assert [p.where for p in bad.problems] == ["kernel command line: bootseed.syslog=ftp://x"]
    assert parse("quiet").syslog is None


def test_line_is_rfc5424_with_pri_host_and_app() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    line = format_line("seed found\nsecond line", app_name="bootseed-early", hostname="vm 1",
                       procid=42, severity=3, timestamp=when)
    assert line == (b"<11>1 2026-01-02T03:04:05.678000Z vm1 bootseed-early 42 - - "
                    b"seed found second line")
    parsed = parse_message(line)
    assert (parsed.format, parsed.facility, parsed.severity) == ("rfc5424", 1, 3)
    assert (parsed.hostname, parsed.app_name, parsed.procid) == ("vm1", "bootseed-early", "42")
    assert len(format_line("x" * 5000, app_name="a", hostname="h")) == MAX_LINE


def test_receiver_reads_rfc3164_and_both_tcp_framings() -> None:
    old = parse_message(b"<30>Dec  1 01:02:03 guest marker[77]: hello there")
    assert (old.format, old.facility, old.severity) == ("rfc3164", 3, 6)
    assert (old.hostname, old.app_name, old.procid, old.message) == (
        "guest", "marker", "77", "hello there")
    messages, rest = split_stream(b"11 <13>1 - - -a\n<13>b\n<13>c")
    assert messages == [b"<13>1 - - -", b"a", b"<13>b"]
    assert rest == b"<13>c"


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_sender_delivers_to_a_real_receiver(protocol: str) -> None:
    with SyslogReceiver() as receiver:
        sender = SyslogSender(SyslogTarget(protocol, "127.0.0.1", receiver.port))
        for n in range(3):
            assert sender.send(format_line(f"line {n}", app_name="bootseed", hostname="h1"))
        sender.close()
        assert receiver.wait_for(lambda got: len(got) == 3, timeout=5)
        got = receiver.snapshot()
    assert [m.message for m in got] == ["line 0", "line 1", "line 2"]
    assert {m.protocol for m in got} == {protocol}
    assert sender.sent == 3 and sender.dropped == 0


def test_tcp_sender_drops_fast_when_nobody_listens() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = SyslogSender(SyslogTarget("tcp", "127.0.0.1", port), timeout=1.0)
    started = time.monotonic()
    assert not sender.send(b"<14>1 - - - - - - lost")
    assert time.monotonic() - started < 2
    assert sender.dropped == 1 and sender.last_error is not None


def test_tcp_sender_reconnects_after_the_receiver_restarts() -> None:
    with SyslogReceiver() as first:
        port = first.port
        sender = SyslogSender(SyslogTarget("tcp", "127.0.0.1", port))
        assert sender.send(b"<14>1 - h a - - - one")
        assert first.wait_for(lambda got: len(got) == 1, timeout=5)
    with SyslogReceiver(port=port) as second:
        # The first send after the restart may vanish into the dead connection;
        # a later one reconnects.
        for _ in range(3):
            sender.send(b"<14>1 - h a - - - two")
        assert second.wait_for(lambda got: len(got) >= 1, timeout=5)
    sender.close()
