"""Every way user-data can expand charges the run's one budget (bytes, nodes, time).

Each hostile input is a few hundred bytes that, unbounded, grows to gigabytes or
runs for minutes. The engine must stop that one part with a problem naming it,
keep every other part, and stay within seconds and a few hundred MB.
"""

from __future__ import annotations

import itertools
import json

import pytest

from tests.reliability.bounded import run_bounded
from tests.reliability.engine_child import ENGINE_SETUP, multipart

SECONDS = 10.0
RSS_MB = 300.0
GOOD_BEFORE = b"#cloud-config\nbefore: 1\n"
GOOD_AFTER = b"#cloud-config\nafter: 2\n"


def _engine(raw: bytes, limits: str = "Limits()") -> dict:
    outcome = run_bounded(
        ENGINE_SETUP + f"\nRAW = {raw!r}\n",
        f"RESULT = summary(process(RAW, limits={limits}))",
    )
    assert outcome.seconds < SECONDS, outcome
    assert outcome.rss_growth_mb < RSS_MB, outcome
    assert isinstance(outcome.result, dict)
    return outcome.result


def _only_the_bomb_fails(result: dict, words: tuple[str, ...]) -> None:
    assert result["config"] == {"before": 1, "after": 2}, result
    assert len(result["problems"]) == 1, result
    where, message = result["problems"][0]
    assert where.startswith("user-data part 2"), result
    assert any(word in message for word in words), message


def test_json_patch_copy_doubling_stops_at_the_node_cap() -> None:
    ops = [{"op": "add", "path": "/seed", "value": ["x" * 40, "y" * 40]}]
    ops += [{"op": "copy", "from": "", "path": f"/d{i}"} for i in range(40)]
    patch = b"#cloud-config-jsonp\n" + json.dumps(ops).encode()
    assert len(patch) < 2000
    result = _engine(multipart(GOOD_BEFORE, patch, GOOD_AFTER))
    _only_the_bomb_fails(result, ("node cap",))


def test_json_patch_value_nested_too_deep_is_one_problem() -> None:
    deep = "[" * 900 + "]" * 900
    patch = f'#cloud-config-jsonp\n[{{"op": "add", "path": "/deep", "value": {deep}}}]'.encode()
    result = _engine(multipart(GOOD_BEFORE, patch, GOOD_AFTER))
    _only_the_bomb_fails(result, ("deeper than",))


TEMPLATES = {
    "plus": '{% set ns = namespace(s="x" * 1000) %}{% for i in range(40) %}'
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "tilde": '{% set ns = namespace(s="x" * 1000) %}{% for i in range(40) %}'
             "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "center": '{{ "x" | center(3000000000) }}',
    "format": '{{ "%3000000000s" | format("x") }}',
    "percent": '{{ "%3000000000d" % 1 }}',
    "replace": '{% set ns = namespace(s="xx") %}{% for i in range(40) %}'
               '{% set ns.s = ns.s | replace("x", "xx") %}{% endfor %}{{ ns.s | length }}',
    "method": '{{ "x".ljust(3000000000) }}',
    "join": '{{ (["x" * 1000000] * 200) | join }}',
    "lipsum": "{{ lipsum(2000000) }}",
    "extend": "{% set l = [1] %}{% for i in range(40) %}{% do l.extend(l) %}{% endfor %}"
              "{{ l | length }}",
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_growth_stops_at_the_size_cap(name: str) -> None:
    template = f"## template: jinja\n#cloud-config\nx: {TEMPLATES[name]}\n".encode()
    result = _engine(multipart(GOOD_BEFORE, template, GOOD_AFTER))
    _only_the_bomb_fails(result, ("size cap", "lipsum()"))


def test_template_loop_without_output_stops_at_the_time_cap() -> None:
    template = (
        b"## template: jinja\n#cloud-config\n"
        b'{% for a in "x" * 100000 %}{% for b in "x" * 100000 %}{% endfor %}{% endfor %}\n'
    )
    result = _engine(multipart(GOOD_BEFORE, template, GOOD_AFTER), "Limits(max_seconds=2.0)")
    _only_the_bomb_fails(result, ("time cap",))


def test_yaml_alias_bomb_under_the_old_cap_is_refused() -> None:
    # Six levels of nine aliases: ~590,000 nodes (under the old cap) from 250 bytes.
    names = "abcdef"
    lines = ["a: &a [x,x,x,x,x,x,x,x,x]"]
    for below, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{','.join([f'*{below}'] * 9)}]")
    bomb = ("#cloud-config\n" + "\n".join(lines) + "\n").encode()
    assert len(bomb) < 300
    result = _engine(multipart(GOOD_BEFORE, bomb, GOOD_AFTER))
    _only_the_bomb_fails(result, ("nodes",))


def test_huge_plain_list_is_refused_before_it_is_built() -> None:
    big = b"#cloud-config\nl:\n" + b"- a\n" * 900_000
    result = _engine(multipart(GOOD_BEFORE, big, GOOD_AFTER))
    _only_the_bomb_fails(result, ("nodes",))


@pytest.mark.parametrize("shape", ["list", "dict"])
def test_merging_many_parts_into_a_big_config_is_linear(shape: str) -> None:
    if shape == "list":
        first = b"#cloud-config\nbefore: 1\nruncmd:\n" + b"- a\n" * 150_000
        later = b"#cloud-config\nmerge_how: list(append)+dict(recurse_array)\nruncmd: [b]\n"
    else:
        first = b"#cloud-config\nbefore: 1\n" + b"".join(
            b"k%d: 1\n" % i for i in range(90_000))
        later = b"#cloud-config\nextra: 1\n"
    raw = multipart(first, *[later] * 990, GOOD_AFTER)
    outcome = run_bounded(
        ENGINE_SETUP + f"\nRAW = {raw!r}\n",
        "r = process(RAW)\n"
        "RESULT = [len(r.parts), len(r.problems), len(r.cloud_config.get('runcmd', [])),"
        " len(r.cloud_config), r.cloud_config.get('after')]",
    )
    assert outcome.seconds < SECONDS, outcome
    assert outcome.rss_growth_mb < RSS_MB, outcome
    parts, problems, runcmd, keys, after = outcome.result  # type: ignore[misc]
    assert (parts, problems, after) == (992, 0, 2)
    if shape == "list":
        assert runcmd == 150_000 + 990
    else:
        assert keys == 90_000 + 3
