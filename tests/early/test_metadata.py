import pytest
from bootseed.early.sources.metadata import (
    MetadataError,
    normalise,
    parse_meta_data,
    parse_simple_yaml,
    public_keys,
)


def test_simple_yaml_shapes():
    text = (
        "# seed\n---\ninstance-id: iid-1  # trailing comment\n"
        "local-hostname: 'it''s'\n"
        "public-keys:\n  - ssh-ed25519 AAAA one\n  - \"ssh-rsa BBBB two\"\n"
        "network-interfaces: |\n  auto eth0\n\n  iface eth0 inet dhcp\nfolded: >-\n  a\n  b\n"
        "nested:\n  list:\n  - name: x\n    n: 3\n  - plain\n  none:\nflow: {\"a\": [1]}\n"
        "yes_no: no\nnum: 12\n"
    )
    assert parse_simple_yaml(text) == {
        "instance-id": "iid-1",
        "local-hostname": "it's",
        "public-keys": ["ssh-ed25519 AAAA one", "ssh-rsa BBBB two"],
        "network-interfaces": "auto eth0\n\niface eth0 inet dhcp\n",
        "folded": "a b",
        "nested": {"list": [{"name": "x", "n": 3}, "plain"], "none": None},
        "flow": {"a": [1]},
        "yes_no": False,
        "num": 12,
    }


def test_json_meta_data_and_empty():
    assert parse_meta_data(b'{"instance-id": "x"}') == {"instance-id": "x"}
    assert parse_meta_data(b"  \n") == {}


def test_unsupported_yaml_falls_back_to_pyyaml_when_present():
    # Anchors are beyond the small parser; PyYAML (installed for the late agent) takes over.
    with pytest.raises(MetadataError):
        parse_simple_yaml("a: &x 1\nb: *x\n")
    assert parse_meta_data(b"a: &x 1\nb: *x\n") == {"a": 1, "b": 1}


def test_bad_meta_data_names_the_line():
    with pytest.raises(MetadataError) as info:
        parse_meta_data(b"instance-id: a\n  : : [\n")
    assert info.value.line >= 1
    with pytest.raises(MetadataError, match="line 1"):
        parse_meta_data(b"{not json")
    with pytest.raises(MetadataError, match="mapping"):
        parse_meta_data(b"- a\n- b\n")


def test_public_keys_every_shape():
    assert public_keys("k1\n# c\n\n k2 ") == ["k1", "k2"]
    assert public_keys(["k1", ["k2\nk3"]]) == ["k1", "k2", "k3"]
    assert public_keys({"b": "kb", "a": {"openssh-key": "ka"}}) == ["ka", "kb"]
    assert public_keys(None) == []


def test_normalise():
    md = normalise({"instance_id": 5, "hostname": "h", "public_keys": "k", "launch-index": "2",
                    "dsmode": "local"})
    assert md["instance-id"] == "5"
    assert md["local-hostname"] == "h"
    assert md["public-keys"] == ["k"]
    assert md["launch-index"] == 2
    assert md["dsmode"] == "local"
    assert "public_keys" not in md
