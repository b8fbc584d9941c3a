import json
import socket
import time

import pytest
from bootseed.early.budget import Budget
from bootseed.early.discover import discover, needs_network
from bootseed.early.sources.base import Context
from bootseed.early.sources.ec2 import TOKEN_HEADER, Imds
from bootseed.image_builder.mocks.imds import Fault, MockImds

from .seedhelpers import isolated_config, make_dmi

META = {
    "instance-id": "i-0123456789abcdef0",
    "local-hostname": "ip-10-1-2-3.ec2.internal",
    "ami-id": "ami-1",
    "ami-launch-index": "3",
    "instance-type": "t3.small",
    "placement": {"availability-zone": "eu-central-1b", "region": "eu-central-1"},
    "block-device-mapping": {"ami": "sda1", "ephemeral0": "sdb", "root": "/dev/sda1"},
    "public-keys": {"alice": "ssh-ed25519 AAAAalice alice@x"},
    "iam": {"info": "{}", "security-credentials": {"role": '{"SecretAccessKey": "s3cr3t"}'}},
    "network": {"interfaces": {"macs": {"02:00:00:00:00:01": {"local-ipv4s": "10.1.2.3"}}}},
}
USER_DATA = b"#cloud-config\nhostname: from-ec2\n"


def ec2_config(tmp_path, imds, cmdline="bootseed.ds=ec2", **kw):
    return isolated_config(tmp_path, cmdline, ec2_endpoints=[imds.url], **kw)


def metadata_requests(imds):
    return [r for r in imds.requests if r.method == "GET"]


@pytest.mark.parametrize("mode", ["v2-required", "v2-optional"])
def test_v2_token_on_every_request(tmp_path, mode):
    with MockImds(META, USER_DATA, mode=mode) as imds:
        seed = discover(ec2_config(tmp_path, imds))
    assert seed.source == "ec2" and seed.problems == []
    [put] = imds.requests_to("/latest/api/token", "PUT")
    assert put.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "21600"
    gets = metadata_requests(imds)
    assert gets and all(TOKEN_HEADER in r.headers for r in gets)
    assert len({r.headers[TOKEN_HEADER] for r in gets}) == 1
    assert seed.metadata["imds"]["version"] == "v2"


def test_normalised_metadata_payloads_and_no_credentials(tmp_path):
    with MockImds(META, USER_DATA, mode="v2-required") as imds:
        seed = discover(ec2_config(tmp_path, imds))
    md = seed.metadata
    assert seed.instance_id == "i-0123456789abcdef0"
    assert md["local-hostname"] == "ip-10-1-2-3.ec2.internal"
    assert md["public-keys"] == ["ssh-ed25519 AAAAalice alice@x"]
    assert md["launch-index"] == 3
    assert (md["region"], md["availability-zone"], md["instance-type"]) == (
        "eu-central-1", "eu-central-1b", "t3.small")
    assert md["instance-identity"]["instanceId"] == "i-0123456789abcdef0"
    assert md["block-device-mapping"] == {"ami": "sda1", "ephemeral0": "sdb",
                                          "root": "/dev/sda1"}
    assert seed.payloads["user-data"] == USER_DATA
    tree = json.loads(seed.payloads["meta-data"])
    assert tree["network"]["interfaces"]["macs"]["02:00:00:00:00:01"]["local-ipv4s"] == "10.1.2.3"
    assert tree["public-keys"] == {"alice": {"openssh-key": "ssh-ed25519 AAAAalice alice@x"}}
    assert "security-credentials" not in tree["iam"]
    assert not imds.requests_to("/latest/meta-data/iam/security-credentials")
    assert b"s3cr3t" not in json.dumps(seed.manifest()).encode()


def test_v1_only_cloud_has_no_token_endpoint(tmp_path):
    with MockImds(META, USER_DATA, mode="v1-only") as imds:
        seed = discover(ec2_config(tmp_path, imds))
    assert seed.source == "ec2"
    assert seed.metadata["imds"]["version"] == "v1"
    assert all(TOKEN_HEADER not in r.headers for r in metadata_requests(imds))


def test_mock_requires_token_in_v2_required_mode(tmp_path):
    # The v1 path against a v2-required service must fail, proving the mock enforces tokens.
    with MockImds(META, mode="v2-required") as imds:
        ctx = Context(Budget(5))
        client = Imds(imds.url, ctx)
        client.version, client.token = "v1", None
        with pytest.raises(Exception, match="401"):
            client.get("meta-data/instance-id")


def test_expired_token_is_refreshed_once(tmp_path):
    with MockImds(META, mode="v2-required") as imds:
        client = Imds(imds.url, Context(Budget(5)))
        assert client.connect()
        first = client.token
        imds.expire_tokens()
        assert client.get("meta-data/instance-id") == b"i-0123456789abcdef0"
        assert client.token != first
        assert len(imds.requests_to("/latest/api/token", "PUT")) == 2
        statuses = [r.headers.get(TOKEN_HEADER) for r in metadata_requests(imds)]
        assert statuses == [first, client.token]


def test_403_on_token_stops_without_v1_fallback(tmp_path):
    fault = Fault("status", path="/latest/api/token", method="PUT", status=403)
    with MockImds(META, USER_DATA, mode="v2-optional", faults=[fault]) as imds:
        seed = discover(ec2_config(tmp_path, imds))
    assert seed.source == "none"
    assert metadata_requests(imds) == []
    assert any("403" in p.message and "not falling back" in p.message for p in seed.problems)


def test_user_data_404_means_none(tmp_path):
    with MockImds(META, None) as imds:
        seed = discover(ec2_config(tmp_path, imds))
    assert seed.source == "ec2" and "user-data" not in seed.payloads
    assert seed.problems == []


def test_transient_5xx_is_retried(tmp_path):
    fault = Fault("status", path="/latest/meta-data/instance-id", status=503, times=2)
    with MockImds(META, USER_DATA, faults=[fault]) as imds:
        seed = discover(ec2_config(tmp_path, imds))
        hits = imds.requests_to("/latest/meta-data/instance-id")
    assert seed.source == "ec2" and seed.problems == []
    assert len(hits) == 3


def test_token_endpoint_5xx_then_ok(tmp_path):
    fault = Fault("status", path="/latest/api/token", status=500, times=1)
    with MockImds(META, USER_DATA, mode="v2-required", faults=[fault]) as imds:
        seed = discover(ec2_config(tmp_path, imds))
    assert seed.source == "ec2"
    assert len(imds.requests_to("/latest/api/token")) == 2


@pytest.mark.parametrize(
    ("fault", "expect"),
    [
        (Fault("status", path="/latest/meta-data/", status=500), "HTTP 500"),
        (Fault("slow-headers", path="/latest/meta-data/", delay=30), "no complete answer"),
        (Fault("slow-body", path="/latest/meta-data/", delay=30), "no complete answer"),
        (Fault("reset", path="/latest/meta-data/"), "reset"),
        (Fault("redirect-loop", path="/latest/meta-data/"), "redirect loop"),
        (Fault("oversized", path="/latest/meta-data/"), "exceeds"),
        (Fault("oversized", path="/latest/meta-data/", declare_length=True), "Content-Length"),
    ],
    ids=["5xx", "slow-headers", "slow-body", "reset", "redirect-loop", "oversized",
         "oversized-declared"],
)
def test_faults_are_reported_and_stay_in_budget(tmp_path, fault, expect):
    with MockImds(META, USER_DATA, mode="v2-required", faults=[fault]) as imds:
        cfg = ec2_config(tmp_path, imds, total_budget=4.0, request_timeout=0.5)
        start = time.monotonic()
        seed = discover(cfg)
        elapsed = time.monotonic() - start
    assert seed.source == "none"
    assert elapsed < 4.0 + 1.0
    assert any(expect in p.message and "/latest/meta-data/" in p.where for p in seed.problems), \
        seed.problems
    assert [t.outcome for t in seed.timings if t.name == "ec2"] == ["error"]


def test_fault_on_user_data_only_loses_the_seed_not_the_boot(tmp_path):
    fault = Fault("reset", path="/latest/user-data")
    with MockImds(META, USER_DATA, faults=[fault]) as imds:
        seed = discover(ec2_config(tmp_path, imds, request_timeout=0.5))
    assert seed.source == "none"
    assert any(p.where.endswith("/latest/user-data") for p in seed.problems)


def test_total_budget_from_cmdline_bounds_everything(tmp_path):
    faults = [Fault("slow-headers", path="/", delay=30)]
    with MockImds(META, USER_DATA, faults=faults) as imds:
        cfg = ec2_config(tmp_path, imds, cmdline="bootseed.ds=ec2 bootseed.timeout=1.5",
                         total_budget=None, request_timeout=10.0)
        start = time.monotonic()
        seed = discover(cfg)
        elapsed = time.monotonic() - start
    assert seed.source == "none"
    assert elapsed < 1.5 + 1.0
    assert len(imds.requests) <= 3


def test_first_endpoint_dead_second_answers(tmp_path):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    with MockImds(META, USER_DATA) as imds:
        cfg = isolated_config(tmp_path, "bootseed.ds=ec2", request_timeout=0.5,
                              ec2_endpoints=[f"http://127.0.0.1:{dead_port}", imds.url])
        seed = discover(cfg)
    assert seed.source == "ec2" and seed.location == imds.url
    assert [p.where for p in seed.problems] == [f"http://127.0.0.1:{dead_port}"]


def test_ipv6_endpoint(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        imds = MockImds(META, USER_DATA, host="::1")
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    with imds:
        assert imds.url.startswith("http://[::1]:")
        seed = discover(ec2_config(tmp_path, imds))
    assert seed.source == "ec2"
    assert imds.requests[0].headers["Host"].startswith("[::1]")


def test_dmi_gates_probing(tmp_path):
    with MockImds(META, USER_DATA) as imds:
        off = discover(ec2_config(tmp_path, imds, cmdline=""))
        assert imds.requests == []
        assert off.source == "none" and off.problems == []
        dmi = make_dmi(tmp_path / "aws", sys_vendor="Amazon EC2")
        on = discover(ec2_config(tmp_path, imds, cmdline="", dmi_dir=dmi))
    assert on.source == "ec2"


@pytest.mark.parametrize(("fields", "cmdline", "expected"), [
    ({}, "", False),
    ({"sys_vendor": "Amazon EC2"}, "", True),
    ({"bios_vendor": "Amazon EC2"}, "", True),
    ({"product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF"}, "", True),
    ({"sys_vendor": "Amazon EC2"}, "bootseed.ds=none", False),
    ({"sys_vendor": "Amazon EC2"}, "bootseed.ds=nocloud", False),
    ({"sys_vendor": "QEMU"}, "bootseed.ds=ec2", True),
    ({}, "ds=nocloud;s=http://10.0.2.2/s/", True),
    ({}, "ds=nocloud;s=/var/seed/", False),
    ({}, "cloud-config-url=https://h/c", True),
])
def test_needs_network(tmp_path, fields, cmdline, expected):
    cfg = isolated_config(tmp_path, cmdline, dmi_dir=make_dmi(tmp_path, **fields))
    assert needs_network(cfg) is expected
