"""The EC2 mock itself, checked with plain HTTP (http.client), not with our client."""

import http.client
import json
import time
import urllib.parse

import pytest
from bootseed.image_builder.mocks.imds import Fault, MockImds

META = {"instance-id": "i-9", "local-hostname": "m", "public-keys": ["ssh-a k1", "ssh-b k2"],
        "placement": {"availability-zone": "us-east-1a", "region": "us-east-1"},
        "security-groups": ["a", "b"]}


def call(imds, method, path, headers=None, timeout=5):
    parts = urllib.parse.urlsplit(imds.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def token(imds, ttl="60"):
    status, body, headers = call(imds, "PUT", "/latest/api/token",
                                 {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert status == 200 and headers["X-aws-ec2-metadata-token-ttl-seconds"] == ttl
    return body.decode()


def test_tree_listing_and_leaves():
    with MockImds(META, b"ud", mode="v2-optional") as imds:
        assert call(imds, "GET", "/latest/meta-data/")[1].decode().splitlines() == [
            "instance-id", "local-hostname", "public-keys/", "placement/", "security-groups"]
        assert call(imds, "GET", "/latest/meta-data/public-keys/")[1] == b"0=key0\n1=key1"
        assert call(imds, "GET", "/latest/meta-data/public-keys/1/openssh-key")[1] == b"ssh-b k2"
        assert call(imds, "GET", "/latest/meta-data/security-groups")[1] == b"a\nb"
        assert call(imds, "GET", "/latest/user-data")[1] == b"ud"
        assert call(imds, "GET", "/latest/meta-data/nope")[0] == 404
        doc = json.loads(call(imds, "GET", "/latest/dynamic/instance-identity/document")[1])
        assert doc["region"] == "us-east-1" and doc["instanceId"] == "i-9"


def test_v2_required_token_rules():
    with MockImds(META, mode="v2-required") as imds:
        assert call(imds, "GET", "/latest/meta-data/instance-id")[0] == 401
        assert call(imds, "PUT", "/latest/api/token")[0] == 400
        assert call(imds, "PUT", "/latest/api/token",
                    {"X-aws-ec2-metadata-token-ttl-seconds": "21601"})[0] == 400
        assert call(imds, "PUT", "/latest/api/token",
                    {"X-aws-ec2-metadata-token-ttl-seconds": "10",
                     "X-Forwarded-For": "1.2.3.4"})[0] == 403
        tok = token(imds)
        good = {"X-aws-ec2-metadata-token": tok}
        assert call(imds, "GET", "/latest/meta-data/instance-id", good)[:2] == (200, b"i-9")
        assert call(imds, "GET", "/latest/meta-data/instance-id",
                    {"X-aws-ec2-metadata-token": "forged"})[0] == 401
        imds.expire_tokens()
        assert call(imds, "GET", "/latest/meta-data/instance-id", good)[0] == 401


def test_token_ttl_follows_the_clock():
    now = [1000.0]
    with MockImds(META, mode="v2-required", clock=lambda: now[0]) as imds:
        tok = token(imds, ttl="5")
        assert call(imds, "GET", "/latest/meta-data/", {"X-aws-ec2-metadata-token": tok})[0] \
            == 200
        now[0] += 5.0
        assert call(imds, "GET", "/latest/meta-data/", {"X-aws-ec2-metadata-token": tok})[0] \
            == 401


def test_v2_optional_and_v1_only():
    with MockImds(META, mode="v2-optional") as imds:
        assert call(imds, "GET", "/latest/meta-data/instance-id")[0] == 200
        assert call(imds, "GET", "/latest/meta-data/instance-id",
                    {"X-aws-ec2-metadata-token": "bad"})[0] == 401
    with MockImds(META, mode="v1-only") as imds:
        assert call(imds, "PUT", "/latest/api/token",
                    {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 404
        assert call(imds, "GET", "/latest/meta-data/instance-id")[0] == 200


def test_faults_count_and_match_method_and_path():
    faults = [Fault("status", path="/latest/meta-data/instance-id", status=502, times=1),
              Fault("status", path="/latest/api/token", method="PUT", status=503)]
    with MockImds(META, faults=faults) as imds:
        assert call(imds, "GET", "/latest/meta-data/instance-id")[0] == 502
        assert call(imds, "GET", "/latest/meta-data/instance-id")[0] == 200
        assert call(imds, "PUT", "/latest/api/token",
                    {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 503
        assert [r.path for r in imds.requests][:2] == ["/latest/meta-data/instance-id"] * 2


def test_reset_redirect_and_oversized_faults():
    with MockImds(META, faults=[Fault("reset", path="/r"), Fault("redirect-loop", path="/l"),
                                Fault("oversized", path="/o", size=300_000,
                                      declare_length=True)]) as imds:
        with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
            call(imds, "GET", "/r")
        status, _, headers = call(imds, "GET", "/l")
        assert status == 302 and headers["Location"] == "/l?loop=1"
        status, body, headers = call(imds, "GET", "/o")
        assert headers["Content-Length"] == "300000" and len(body) == 300_000


def test_slow_headers_fault_delays_the_answer():
    with MockImds(META, faults=[Fault("slow-headers", path="/latest/meta-data/",
                                      delay=0.6)]) as imds:
        start = time.monotonic()
        status = call(imds, "GET", "/latest/meta-data/instance-id")[0]
        assert status == 200 and time.monotonic() - start >= 0.6


def test_unknown_fault_and_mode_are_rejected():
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("explode")
    with pytest.raises(ValueError, match="mode"):
        MockImds(META, mode="v3")


def test_from_seed_dir_yaml_and_json(tmp_path):
    (tmp_path / "meta-data").write_text(
        "instance-id: iid-yaml\nlocal-hostname: y\npublic-keys:\n  - ssh-ed25519 K y\n")
    (tmp_path / "user-data").write_bytes(b"#cloud-config\n")
    with MockImds.from_seed_dir(tmp_path, mode="v2-required") as imds:
        tok = {"X-aws-ec2-metadata-token": token(imds)}
        assert call(imds, "GET", "/latest/meta-data/instance-id", tok)[1] == b"iid-yaml"
        assert call(imds, "GET", "/latest/meta-data/hostname", tok)[1] == b"y"
        assert call(imds, "GET", "/latest/meta-data/public-keys/0/openssh-key", tok)[1] == \
            b"ssh-ed25519 K y"
        assert call(imds, "GET", "/latest/user-data", tok)[1] == b"#cloud-config\n"
        assert call(imds, "GET", "/latest/meta-data/ami-launch-index", tok)[1] == b"0"
    (tmp_path / "meta-data").write_text('{"instance-id": "iid-json"}')
    (tmp_path / "user-data").unlink()
    with MockImds.from_seed_dir(tmp_path) as imds:
        assert call(imds, "GET", "/latest/meta-data/instance-id")[1] == b"iid-json"
        assert call(imds, "GET", "/latest/user-data")[0] == 404
