from __future__ import annotations

import pytest
from bootseed.late.userdata import detect as ct


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"#cloud-config\na: 1\n", ct.CLOUD_CONFIG),
        (b"#Cloud-Config\n", ct.CLOUD_CONFIG),
        (b"  \n\t#CLOUD-CONFIG\n", ct.CLOUD_CONFIG),
        (b"#cloud-config-archive\n- x\n", ct.CLOUD_CONFIG_ARCHIVE),
        (b"#cloud-config-jsonp\n[]", ct.CLOUD_CONFIG_JSONP),
        (b"#include\nhttp://x/\n", ct.INCLUDE),
        (b"#include-once\nhttp://x/\n", ct.INCLUDE_ONCE),
        (b"#INCLUDE-ONCE http://x/\n", ct.INCLUDE_ONCE),
        (b"#!/bin/bash\necho\n", ct.SHELLSCRIPT),
        (b"#!/usr/bin/env python3\n", ct.SHELLSCRIPT),
        (b"#cloud-boothook\n#!/bin/sh\n", ct.BOOTHOOK),
        (b"#part-handler\ndef list_types(): ...\n", ct.PART_HANDLER),
        (b"## template: jinja\n#cloud-config\n", ct.JINJA),
        (b"## Template: JINJA\n#!/bin/sh\n", ct.JINJA),
    ],
)
def test_first_line_detection(payload: bytes, expected: str) -> None:
    assert ct.detect(payload) == expected


@pytest.mark.parametrize(
    "payload", [b"", b"   \n", b"hello", b"# cloud-config\n", b"cloud-config", b"\x00\xff#!"]
)
def test_unrecognised_content_has_no_type(payload: bytes) -> None:
    assert ct.detect(payload) is None


def test_gzip_magic() -> None:
    assert ct.is_gzip(b"\x1f\x8b\x08rest")
    assert not ct.is_gzip(b"\x1f")
