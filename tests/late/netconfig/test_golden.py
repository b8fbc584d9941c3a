"""Golden renderer tests: for each construct a small input and the exact files expected.

Each directory under ``golden/`` holds one input (``input.yaml``: cloud-init v1 or v2;
``network_data.json``: OpenStack; ``meta-data.json``: an EC2 metadata tree) and every
file the renderer must produce, by name; nothing more, nothing less.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.late.netconfig.networkd import render
from bootseed.late.netconfig.source import OPENSTACK_FORMAT, SeedNetwork, from_seed

GOLDEN = Path(__file__).parent / "golden"
INPUTS = ("input.yaml", "network_data.json", "meta-data.json")
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def load_case(case: Path) -> SeedNetwork:
    if (case / "network_data.json").exists():
        return from_seed({"network-config": (case / "network_data.json").read_bytes()},
                         {"network-config-format": OPENSTACK_FORMAT}, "configdrive")
    if (case / "meta-data.json").exists():
        return from_seed({"meta-data": (case / "meta-data.json").read_bytes()}, {}, "ec2")
    return from_seed({"network-config": (case / "input.yaml").read_bytes()}, {}, "nocloud")


def test_every_kind_of_input_has_cases():
    assert {"v1-bond", "v1-vlan", "v1-bridge", "v2-bond-vlan", "v2-bridge", "openstack",
            "ec2"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str):
    case = GOLDEN / name
    seed_network = load_case(case)
    assert seed_network.parsed is not None
    assert seed_network.parsed.problems == []
    rendered = render(seed_network.parsed.config)
    assert rendered.problems == []
    expected = {p.name: p.read_text() for p in case.iterdir() if p.name not in INPUTS}
    assert set(rendered.files) == set(expected)
    for file_name, text in expected.items():
        assert rendered.files[file_name] == text, file_name
