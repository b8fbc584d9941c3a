from __future__ import annotations

from typing import Any

from bootseed.late.userdata.engine import process
from bootseed.late.userdata.template import instance_variables
from bootseed.late.userdata.types import Limits

from .helpers import P, multipart

INSTANCE: dict[str, Any] = {
    "base64_encoded_keys": ["ds/secret"],
    "v1": {
        "instance_id": "i-0abc",
        "local_hostname": "web-1",
        "cloud_name": "testcloud",
        "region": "moon-1",
    },
    "ds": {"meta_data": {"local-hostname": "web-1", "tags": {"role": "db"}}, "secret": "aGVsbG8="},
}


def test_jinja_cloud_config_is_rendered_with_instance_data() -> None:
    raw = (
        b"## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n"
        b"runcmd:\n  - echo {{ instance_id }} in {{ v1.region }}"
        b" {{ ds.meta_data.local_hostname }}\n"
        b"{% if ds.meta_data.tags.role == 'db' %}\npackages: [postgresql]\n{% endif %}\n"
    )
    result = process(raw, instance_data=INSTANCE)
    assert result.problems == []
    assert result.cloud_config == {
        "hostname": "web-1",
        "runcmd": ["echo i-0abc in moon-1 web-1"],
        "packages": ["postgresql"],
    }
    assert [(p.content_type, p.source) for p in result.parts] == [
        ("text/cloud-config", "user-data (rendered)")
    ]
    assert result.parts[0].payload.startswith(b"#cloud-config\nhostname: web-1\n")


def test_jinja_script_and_mime_declared_template() -> None:
    raw = multipart(
        P(b"## template: jinja\n#!/bin/sh\necho {{ v1.cloud_name }}\n", filename="t.sh"),
        P(b"#!/bin/sh\necho {{ v1.region }}\n", "text/jinja2", "declared.sh"),
    )
    result = process(raw, instance_data=INSTANCE)
    assert result.problems == []
    assert [(p.content_type, p.payload) for p in result.parts] == [
        ("text/x-shellscript", b"#!/bin/sh\necho testcloud"),
        ("text/x-shellscript", b"#!/bin/sh\necho moon-1"),
    ]


def test_undefined_variable_renders_placeholder_and_is_reported() -> None:
    raw = b"## template: jinja\n#!/bin/sh\necho {{ v1.no_such_key }} {{ nothing.at.all }}\n"
    result = process(raw, instance_data=INSTANCE)
    assert result.parts[0].payload == (
        b"#!/bin/sh\necho CI_MISSING_JINJA_VAR/no_such_key CI_MISSING_JINJA_VAR/nothing"
    )
    assert [p.message.split(" is ")[0] for p in result.problems] == [
        "template variable 'no_such_key'",
        "template variable 'nothing'",
    ]


def test_without_instance_data_every_variable_is_undefined() -> None:
    result = process(b"## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n")
    assert result.cloud_config == {"hostname": "CI_MISSING_JINJA_VAR/v1"}
    assert len(result.problems) == 1


def test_syntax_error_names_the_line_of_the_part() -> None:
    raw = multipart(
        P(b"## template: jinja\n#cloud-config\na: 1\nb: {% if %}\n", filename="bad"),
        P(b"#cloud-config\nok: true\n"),
    )
    result = process(raw, instance_data=INSTANCE)
    assert [p.where for p in result.problems] == ["user-data part 1 (bad) line 4"]
    assert result.cloud_config == {"ok": True}


def test_runtime_error_in_template_is_reported() -> None:
    result = process(b"## template: jinja\n#!/bin/sh\n{{ 1 / 0 }}\n", instance_data=INSTANCE)
    assert result.parts == []
    assert ["ZeroDivisionError" in p.message for p in result.problems] == [True]


def test_template_rendering_to_an_unsupported_type() -> None:
    result = process(
        b"## template: jinja\n#include\nhttp://127.0.0.1:9/x\n", instance_data=INSTANCE
    )
    assert result.parts == []
    assert ["must render to" in p.message for p in result.problems] == [True]


def test_rendered_cloud_config_with_bad_yaml_names_rendered_line() -> None:
    result = process(
        b"## template: jinja\n#cloud-config\na: [{{ v1.region }}\n", instance_data=INSTANCE
    )
    assert result.problems[0].where.startswith("user-data (rendered) line ")


def test_sandbox_refuses_internals_and_huge_output() -> None:
    sneaky = process(
        b"## template: jinja\n#!/bin/sh\n{{ ''.__class__.__mro__ }}\n", instance_data={}
    )
    # The sandbox hides Python internals: they are undefined, never the object.
    assert sneaky.parts[0].payload == b"#!/bin/sh\nCI_MISSING_JINJA_VAR/__class__"
    assert len(sneaky.problems) == 1
    big = process(
        b"## template: jinja\n#!/bin/sh\n{{ 'x' * 100000000 }}\n",
        instance_data={},
        limits=Limits(max_total_bytes=1 << 20),
    )
    assert big.parts == []
    assert ["size cap" in p.message for p in big.problems] == [True]
    loops = process(
        b"## template: jinja\n#!/bin/sh\n{% for i in range(100000) %}{% for j in range(100000) %}"
        b"{% endfor %}{% endfor %}\n",
        instance_data={},
    )
    assert loops.parts == []
    assert ["range()" in p.message for p in loops.problems] == [True]


def test_instance_variables_aliases_and_decoding() -> None:
    variables = instance_variables(INSTANCE)
    assert variables["instance_id"] == "i-0abc"
    assert variables["ds"]["meta_data"]["local_hostname"] == "web-1"
    assert variables["ds"]["meta_data"]["local-hostname"] == "web-1"
    assert variables["ds"]["secret"] == "hello"
    assert instance_variables({"v1.0": {"a-b": 1}})["v1_0"]["a_b"] == 1
