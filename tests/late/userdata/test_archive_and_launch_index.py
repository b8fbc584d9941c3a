from __future__ import annotations

import base64
import gzip

from bootseed.late.userdata.engine import process

from .helpers import P, multipart

ARCHIVE = b"""#cloud-config-archive
- type: text/x-shellscript
  filename: first.sh
  content: |
    #!/bin/sh
    echo first
- content: |
    #cloud-config
    runcmd: [from-archive]
- "#!/bin/sh\\necho plain string item\\n"
- content: "packages: [untyped-is-cloud-config]"
  filename: untyped.yaml
  Merge-Type: "list(append)+dict(recurse_array)+str()"
- type: text/cloud-boothook
  content: |
    #cloud-boothook
    #!/bin/sh
    echo hook
"""


def test_archive_items_become_parts_in_order() -> None:
    result = process(ARCHIVE)
    assert result.problems == []
    assert [(p.content_type, p.filename, p.source) for p in result.parts] == [
        ("text/x-shellscript", "first.sh", "user-data item 1 (first.sh)"),
        ("text/cloud-config", "part-002", "user-data item 2"),
        ("text/x-shellscript", "part-003", "user-data item 3"),
        ("text/cloud-config", "untyped.yaml", "user-data item 4 (untyped.yaml)"),
        ("text/cloud-boothook", "part-005", "user-data item 5"),
    ]
    assert result.parts[0].payload == b"#!/bin/sh\necho first\n"
    assert result.parts[3].merge_how == "list(append)+dict(recurse_array)+str()"
    assert result.cloud_config == {
        "runcmd": ["from-archive"],
        "packages": ["untyped-is-cloud-config"],
    }
    # The boothook payload is ready to execute: marker line gone.
    assert result.parts[4].payload == b"#!/bin/sh\necho hook\n"


def test_archive_item_with_gzip_binary_content() -> None:
    packed = base64.b64encode(gzip.compress(b"#!/bin/sh\necho zipped\n")).decode()
    result = process(
        f"#cloud-config-archive\n- filename: z\n  content: !!binary |\n    {packed}\n".encode()
    )
    assert result.problems == []
    assert [(p.content_type, p.payload) for p in result.parts] == [
        ("text/x-shellscript", b"#!/bin/sh\necho zipped\n")
    ]


def test_bad_archive_items_are_reported_one_by_one() -> None:
    raw = (
        b"#cloud-config-archive\n- 42\n- content: {not: text}\n"
        b"- content: '#!/bin/sh'\n- type: 7\n  content: 'a: 1'\n"
    )
    result = process(raw)
    assert [p.where for p in result.problems] == [
        "user-data item 1",
        "user-data item 2",
        "user-data item 4",
    ]
    assert [p.content_type for p in result.parts] == ["text/x-shellscript", "text/cloud-config"]
    assert result.cloud_config == {"a": 1}


def test_archive_that_is_not_a_list() -> None:
    result = process(b"#cloud-config-archive\nkey: value\n")
    assert result.parts == []
    assert ["must be a list" in p.message for p in result.problems] == [True]


def test_archive_with_broken_yaml() -> None:
    result = process(b"#cloud-config-archive\n- content: 'unterminated\n")
    assert result.parts == []
    assert result.problems[0].where.startswith("user-data line ")


def _indexed() -> bytes:
    return multipart(
        P(b"#!/bin/sh\necho everyone\n", filename="all.sh"),
        P(b"#!/bin/sh\necho zero\n", filename="zero.sh", headers={"Launch-Index": "0"}),
        P(b"#!/bin/sh\necho one\n", filename="one.sh", headers={"Launch-Index": "1"}),
        P(b"#cloud-config\nlaunch-index: 1\nhostname: one\n", filename="one.yaml"),
        P(
            b"#cloud-config\nlaunch-index: 1\nruncmd: [header-wins]\n",
            filename="hdr.yaml",
            headers={"Launch-Index": "0"},
        ),
        P(
            b"#cloud-config-archive\n"
            b"- launch-index: 1\n  content: '#!/bin/sh'\n  filename: arch1.sh\n"
            b"- launch-index: 0\n  content: '#!/bin/sh'\n  filename: arch0.sh\n"
        ),
    )


def test_launch_index_filtering() -> None:
    zero = process(_indexed(), launch_index=0)
    assert zero.problems == []
    assert [p.filename for p in zero.parts] == ["all.sh", "zero.sh", "hdr.yaml", "arch0.sh"]
    assert zero.cloud_config == {"launch-index": 1, "runcmd": ["header-wins"]}
    assert len(zero.notes) == 3
    one = process(_indexed(), launch_index=1)
    assert [p.filename for p in one.parts] == ["all.sh", "one.sh", "one.yaml", "arch1.sh"]
    assert [p.launch_index for p in one.parts] == [None, 1, 1, 1]
    assert one.cloud_config == {"launch-index": 1, "hostname": "one"}


def test_without_a_launch_index_nothing_is_filtered() -> None:
    result = process(_indexed())
    assert len(result.parts) == 7
    assert result.parts[4].launch_index == 0


def test_bad_launch_index_is_reported_and_the_part_kept() -> None:
    raw = multipart(P(b"#!/bin/sh\n", filename="x", headers={"Launch-Index": "two"}))
    result = process(raw, launch_index=0)
    assert [p.filename for p in result.parts] == ["x"]
    assert ["not an integer" in p.message for p in result.problems] == [True]
