"""Keys from the lab repository builder (real gpg keys) against our own reader."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.image_builder.mocks.aptrepo import LabRepo, build_lab_repo
from bootseed.image_builder.mocks.keyserver import HkpKeyserver
from bootseed.late.apt import keys


@pytest.fixture(scope="session")
def lab_repo(tmp_path_factory: pytest.TempPathFactory) -> LabRepo:
    cache = Path(os.environ.get("BOOTSEED_CACHE", "/var/cache/bootseed"))
    if not os.access(cache.parent, os.W_OK):
        cache = tmp_path_factory.mktemp("cache")
    return build_lab_repo(cache)


@pytest.fixture
def keyserver(lab_repo: LabRepo) -> Iterator[HkpKeyserver]:
    with HkpKeyserver({k.fingerprint: k.armored for k in lab_repo.keys.values()}) as server:
        yield server  # type: ignore[misc]


def test_fingerprint_of_a_real_key_matches_gpg(lab_repo: LabRepo) -> None:
    for key in lab_repo.keys.values():
        parsed = keys.read_public_key(key.armored)
        assert parsed.fingerprints[0] == key.fingerprint
        assert parsed.matches(key.keyid) and parsed.matches("0x" + key.fingerprint.lower())
        assert parsed.binary[0] & 0x80  # de-armoured: an OpenPGP packet stream


def test_armour_with_headers_and_surrounding_text(lab_repo: LabRepo) -> None:
    armored = lab_repo.keys["lab"].armored.replace(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: lab key\n\n")
    assert "Comment" in armored
    parsed = keys.read_public_key("some words\n" + armored + "\ntrailing words\n")
    assert parsed.fingerprints[0] == lab_repo.keys["lab"].fingerprint


@pytest.mark.parametrize("bad", ["", "not a key", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"
                                 "!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n"])
def test_unreadable_keys_are_refused(bad: str) -> None:
    with pytest.raises(keys.AptKeyError):
        keys.read_public_key(bad)


@pytest.mark.parametrize(("server", "url"), [
    (None, "https://keyserver.ubuntu.com:443/pks/lookup?op=get&options=mr&search=0xAABBCCDD"),
    ("hkp://ks.example", "http://ks.example:11371/pks/lookup?op=get&options=mr&search=0xAABBCCDD"),
    ("ks.example", "https://ks.example:443/pks/lookup?op=get&options=mr&search=0xAABBCCDD"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/pks/lookup?op=get&options=mr&search=0xAABBCCDD"),
])
def test_keyserver_spellings(server: str | None, url: str) -> None:
    assert keys.keyserver_url(server, "aabbccdd") == url


def test_fetch_by_keyid_over_hkp(lab_repo: LabRepo, keyserver: HkpKeyserver) -> None:
    wanted = lab_repo.keys["lab-extra"]
    key = keys.fetch_key(wanted.keyid, keyserver.url)
    assert key.fingerprints[0] == wanted.fingerprint
    assert keyserver.requests_to("/pks/lookup")[0].path.endswith(f"search=0x{wanted.keyid}")


def test_a_keyserver_answering_another_key_is_refused(lab_repo: LabRepo) -> None:
    wanted, other = lab_repo.keys["lab"], lab_repo.keys["lab-extra"]
    # A hostile keyserver that answers every lookup with the other key.
    with (HkpKeyserver({wanted.fingerprint: other.armored}) as server,
          pytest.raises(keys.AptKeyError, match="does not end in")):
        keys.fetch_key(wanted.keyid, server.url)


def test_unknown_key_and_unreachable_keyserver(lab_repo: LabRepo, keyserver: HkpKeyserver) -> None:
    with pytest.raises(keys.AptKeyError, match="HTTP 404"):
        keys.fetch_key("0123456789ABCDEF", keyserver.url)
    with pytest.raises(keys.AptKeyError, match="unreachable"):
        keys.fetch_key("0123456789ABCDEF", "http://127.0.0.1:9", timeout=3)
