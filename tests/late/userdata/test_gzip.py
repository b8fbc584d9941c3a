from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest
from bootseed.late.userdata.budget import Budget, BudgetExceeded
from bootseed.late.userdata.engine import process
from bootseed.late.userdata.gunzip import GunzipError, gunzip
from bootseed.late.userdata.types import Limits

from .helpers import P, gz, multipart

CONFIG = b"#cloud-config\nruncmd: [zipped]\n"


def _bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed in a streaming way (about size/1000 bytes)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    out = [comp.compress(block) for _ in range(size >> 20)]
    out.append(comp.flush())
    return b"".join(out)


def test_whole_blob_gzip() -> None:
    result = process(gz(CONFIG))
    assert result.problems == []
    assert result.cloud_config == {"runcmd": ["zipped"]}


def test_whole_blob_gzip_of_a_multipart() -> None:
    raw = gz(multipart(P(b"#!/bin/sh\necho a\n", filename="a.sh"), P(CONFIG)))
    result = process(raw)
    assert result.problems == []
    assert [p.filename for p in result.parts] == ["a.sh", "part-002"]


@pytest.mark.parametrize("declared", ["application/x-gzip", "application/gzip", "text/plain"])
def test_gzip_part_is_decompressed_and_redetected(declared: str) -> None:
    raw = multipart(P(gz(b"#!/bin/sh\necho zipped\n"), declared, "z.sh", encoding="base64"))
    result = process(raw)
    assert result.problems == []
    assert [(p.content_type, p.payload) for p in result.parts] == [
        ("text/x-shellscript", b"#!/bin/sh\necho zipped\n")
    ]


def test_gzip_part_keeps_its_launch_index_and_filename() -> None:
    raw = multipart(P(gz(CONFIG), "application/x-gzip", "c.gz", {"Launch-Index": "3"}, "base64"))
    result = process(raw, launch_index=3)
    assert [(p.filename, p.launch_index) for p in result.parts] == [("c.gz", 3)]


def test_concatenated_gzip_members() -> None:
    result = process(gz(b"#cloud-config\n") + gz(b"a: 1\n"))
    assert result.cloud_config == {"a": 1}


def test_corrupt_and_truncated_gzip_are_reported() -> None:
    good = gz(CONFIG)
    truncated = multipart(
        P(good[: len(good) // 2], "application/x-gzip", "t", encoding="base64"), P(CONFIG)
    )
    result = process(truncated)
    assert ["truncated" in p.message for p in result.problems] == [True]
    assert result.cloud_config == {"runcmd": ["zipped"]}
    corrupt = good[:10] + b"\xff" * 20 + good[30:]
    result = process(corrupt)
    assert result.parts == []
    assert len(result.problems) == 1
    assert result.problems[0].where == "user-data"


def test_gzip_bomb_stops_at_the_cap_with_bounded_memory() -> None:
    bomb = _bomb(256 << 20)  # 256 MiB of zeros in about 256 KiB
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        result = process(bomb, limits=Limits(max_total_bytes=8 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.parts == []
    assert len(result.problems) == 1
    assert "size budget" in result.problems[0].message
    assert peak < 32 << 20, f"peak {peak} bytes"


def test_gzip_bomb_inside_a_part_leaves_other_parts_alone() -> None:
    raw = multipart(
        P(_bomb(64 << 20), "application/x-gzip", "bomb", encoding="base64"),
        P(CONFIG, "text/cloud-config", "ok"),
    )
    result = process(raw, limits=Limits(max_total_bytes=1 << 20))
    assert [p.where for p in result.problems] == ["user-data part 1 (bomb)"]
    assert [p.filename for p in result.parts] == ["ok"]


def test_budget_is_shared_by_all_parts() -> None:
    payload = b"#!/bin/sh\n" + b"#" * 600_000
    raw = multipart(
        *(P(gz(payload), "application/x-gzip", f"p{i}", encoding="base64") for i in range(3))
    )
    result = process(raw, limits=Limits(max_total_bytes=1_500_000))
    assert [p.filename for p in result.parts] == ["p0", "p1"]
    assert [p.where for p in result.problems] == ["user-data part 3 (p2)"]


def test_gunzip_unit() -> None:
    budget = Budget(100)
    assert gunzip(gz(b"x" * 100), budget) == b"x" * 100
    assert budget.remaining == 0
    with pytest.raises(BudgetExceeded):
        gunzip(gz(b"y"), budget)
    with pytest.raises(GunzipError):
        gunzip(gz(b"abc") + b"garbage", Budget(100))
    assert gunzip(gz(b"abc") + b"\0\0\0", Budget(100)) == b"abc"
    with pytest.raises(GunzipError):
        gunzip(gzip.compress(b"abc")[:-4], Budget(100))
