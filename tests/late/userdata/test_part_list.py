"""``bootseed userdata render`` lists every part, failed and ignored ones included,
each with its status, in the order met (as cloud-init 22.4's part list keeps them)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from bootseed.late.cli import main

from .helpers import P, gz, multipart

BAD_GZIP = b"\x1f\x8b\x08\x00" + b"not really deflate data at all"


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _render(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes,
            ) -> tuple[int, list[dict[str, object]], str]:
    ud = tmp_path / "ud"
    ud.write_bytes(data)
    code = main(["userdata", "render", str(ud), "--json", "--include-timeout", "0.5"])
    doc = json.loads(capsys.readouterr().out)
    human_code = main(["userdata", "render", str(ud), "--include-timeout", "0.5"])
    assert human_code == code
    return code, doc["all_parts"], capsys.readouterr().out


def test_failed_and_ignored_parts_keep_their_place(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_unused_port()}/more.yaml"
    archive = (b"#cloud-config-archive\n- type: text/cloud-config\n  content: 'runcmd: [x]'\n"
               b"- 42\n")
    data = multipart(
        P(b"#cloud-config\nruncmd: [a]\n", "text/cloud-config", "good.yaml"),
        P(BAD_GZIP, "application/x-gzip", "bad.gz", encoding="base64"),
        P(b"anything at all\n", "application/x-no-such-type", "odd.bin"),
        P(f"#include\n{url}\n".encode(), "text/x-include-url", "inc.txt"),
        P(b"#cloud-config\nruncmd: [a\n bad: : yaml\n", "text/cloud-config", "bad.yaml"),
        P(gz(b"#cloud-config\nhostname: zipped\n"), "application/x-gzip", "good.gz",
          encoding="base64"),
        P(archive, "text/cloud-config-archive", "archive.yaml"),
    )
    code, records, human = _render(tmp_path, capsys, data)
    assert code == 1
    summary = [(r["status"], r["filename"]) for r in records]
    assert summary == [
        ("used", "good.yaml"),
        ("failed", "bad.gz"),
        ("ignored", "odd.bin"),
        ("unpacked", "inc.txt"),
        ("failed", None),  # the include URL: nothing was fetched
        ("failed", "bad.yaml"),
        ("used", "good.gz"),
        ("unpacked", "archive.yaml"),
        ("used", None),  # archive item 1
        ("failed", None),  # archive item 2 is not a mapping
    ], records
    by_status = {r["where"]: r for r in records}
    assert "corrupt gzip data" in str(records[1]["reason"])
    assert "not handled" in str(records[2]["reason"])
    assert str(records[4]["where"]).endswith(f"include {url}")
    assert "include not fetched" in str(records[4]["reason"])
    assert "invalid YAML" in str(records[5]["reason"])
    assert str(records[9]["where"]).endswith("item 2")
    assert len(by_status) == len(records)
    # The human listing says the same, one line per part.
    listed = human.split("every part met (10):\n", 1)[1].split("cloud-config:\n", 1)[0]
    assert [line.split()[0] for line in listed.splitlines()] == [s for s, _ in summary]


def test_a_whole_user_data_that_fails_is_one_failed_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, records, _ = _render(tmp_path, capsys, BAD_GZIP)
    assert code == 1
    assert [(r["where"], r["status"]) for r in records] == [("user-data", "failed")]
    assert "corrupt gzip data" in str(records[0]["reason"])
    # Bad YAML in a plain cloud-config: the one part, failed, with its line.
    code, records, _ = _render(tmp_path, capsys, b"#cloud-config\na: [1\nb: : :\n")
    assert code == 1 and [r["status"] for r in records] == ["failed"]
    assert "invalid YAML" in str(records[0]["reason"])
    # An unknown content type on its own: ignored, exit 0 (a note, not a problem).
    code, records, _ = _render(tmp_path, capsys, multipart(
        P(b"zzz\n", "text/x-unknown-thing", "u.txt")))
    assert code == 0 and [r["status"] for r in records] == ["ignored"]
    # A template that renders to nothing bootseed runs: the template is unpacked, its
    # rendering failed, and the part after it is still used.
    template = multipart(P(b"## template: jinja\nhello {{ 6 * 7 }}\n",
                           "text/jinja2", "t.j2"),
                         P(b"#cloud-config\nruncmd: [b]\n", "text/cloud-config", "ok.yaml"))
    code, records, _ = _render(tmp_path, capsys, template)
    assert code == 1
    assert [(r["filename"], r["status"]) for r in records] == [
        ("t.j2", "unpacked"), (None, "failed"), ("ok.yaml", "used")]
    assert str(records[1]["where"]).endswith("(rendered)")
