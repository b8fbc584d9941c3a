"""The OVF environment parser refuses document type declarations in any encoding."""

from __future__ import annotations

import pytest
from bootseed.early.sources.base import SourceError
from bootseed.early.sources.ovf import parse_properties

BOMB = (
    '<?xml version="1.0" encoding="{enc}"?>\n'
    '<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
    '<Environment><PropertySection><Property key="user-data" value="&b;"/>'
    "</PropertySection></Environment>\n"
)
PLAIN = (
    '<?xml version="1.0" encoding="{enc}"?>\n'
    '<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" '
    'xmlns:oe="http://schemas.dmtf.org/ovf/environment/1">'
    '<PropertySection><Property oe:key="hostname" oe:value="vm-7"/></PropertySection>'
    "</Environment>\n"
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_dtd_is_refused_whatever_the_encoding(encoding: str) -> None:
    data = BOMB.format(enc=encoding.upper()).encode(encoding)
    if encoding in ("utf-16", "utf-32"):
        assert data[:2] in (b"\xff\xfe", b"\xfe\xff")  # the codec wrote a BOM
    with pytest.raises(SourceError) as caught:
        parse_properties(data, "ovf-env.xml")
    if encoding in ("utf-8", "utf-16"):
        assert "DOCTYPE/ENTITY" in str(caught.value)
    # Without a byte order mark (or in UTF-32) expat cannot even read the
    # declaration: refused as not well-formed, never expanded.


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_plain_environment_is_read_in_either_encoding(encoding: str) -> None:
    data = PLAIN.format(enc=encoding.upper()).encode(encoding)
    assert parse_properties(data, "ovf-env.xml") == {"hostname": "vm-7"}
