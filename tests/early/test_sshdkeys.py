"""The initramfs SSH server's authorized keys, assembled from a real seed cache."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from bootseed.contract.seedcache import Seed, write_seed_cache
from bootseed.early.sshdkeys import assemble, checked_key, user_data_keys


def _key(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
                   check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def keys(tmp_path: Path) -> list[str]:
    return [_key(tmp_path, f"k{n}") for n in range(4)]


def _cache(directory: Path, public_keys: list[str], user_data: bytes | None) -> Path:
    seed = Seed(source="nocloud", instance_id="iid-1",
                metadata={"instance-id": "iid-1", "public-keys": public_keys},
                payloads={} if user_data is None else {"user-data": user_data})
    write_seed_cache(seed, directory)
    return directory


def test_meta_data_user_data_and_fallback_each_key_once(tmp_path: Path, keys: list[str]):
    user_data = (f"#cloud-config\nssh_authorized_keys:\n  - {keys[1]}\n  - {keys[0]}\n"
                 f"system_info:\n  default_user:\n    ssh_authorized_keys: ['{keys[2]}']\n")
    cache = _cache(tmp_path / "cache", [keys[0]], user_data.encode())
    fallback = tmp_path / "fallback"
    fallback.write_text(f"# baked in by bootseed-image build\n{keys[3]}\n{keys[0]}\n")
    found = assemble(cache, fallback)
    assert found.keys == keys
    assert found.sources == {"meta-data public-keys": 1, "user-data ssh_authorized_keys": 2,
                             "image fallback key": 1}
    assert found.problems == []
    assert found.text() == "".join(f"{k}\n" for k in keys)


def test_gzip_and_multipart_user_data(keys: list[str]):
    config = f"#cloud-config\nssh_authorized_keys: [{keys[0]}]\n"
    assert user_data_keys(gzip.compress(config.encode())) == [keys[0]]
    multipart = (
        'Content-Type: multipart/mixed; boundary="B"\nMIME-Version: 1.0\n\n'
        '--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n'
        f'--B\nContent-Type: text/cloud-config\n\nssh_authorized_keys:\n  - {keys[1]}\n'
        '--B--\n')
    assert user_data_keys(multipart.encode()) == [keys[1]]
    assert user_data_keys(b"#!/bin/sh\necho no keys here\n") == []


def test_bad_entries_are_reported_and_left_out(tmp_path: Path, keys: list[str]):
    forced = f'command="/bin/sh -c reboot" {keys[1]}'
    cache = _cache(tmp_path / "cache", [keys[0], forced, "ssh-ed25519 not-base64!"], None)
    found = assemble(cache, tmp_path / "no-such-file")
    assert found.keys == [keys[0]]
    assert found.sources == {"meta-data public-keys": 1}
    assert [p.message for p in found.problems] == [
        "entry 2 is not an OpenSSH public key; left out",
        "entry 3 is not an OpenSSH public key; left out"]
    assert all(keys[1] not in p.message for p in found.problems)


def test_key_type_must_match_the_blob(keys: list[str]):
    kind, blob, comment = keys[0].split()
    assert checked_key(keys[0]) == keys[0]
    assert checked_key(f"ssh-rsa {blob} {comment}") is None
    assert checked_key(f"{kind} {blob} bad\x07comment") is None
    assert checked_key(f"  {kind}   {blob}  ") == f"{kind} {blob}"


def test_unreadable_user_data_is_a_problem_not_a_crash(tmp_path: Path, keys: list[str]):
    cache = _cache(tmp_path / "cache", [keys[0]], b"#cloud-config\nkey: [unclosed\n")
    found = assemble(cache, None)
    assert found.keys == [keys[0]]
    assert found.problems and found.problems[0].where == "initramfs ssh keys: user-data"


def test_no_cache_means_only_the_fallback(tmp_path: Path, keys: list[str]):
    fallback = tmp_path / "fallback"
    fallback.write_text(keys[0] + "\n")
    found = assemble(tmp_path / "empty", fallback)
    assert found.keys == [keys[0]] and found.sources == {"image fallback key": 1}
