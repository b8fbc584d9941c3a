"""The simplestreams catalog, read by the real simplestreams tools over HTTP."""

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bootseed.image_builder import catalog, cli
from bootseed.image_builder.mocks.static import StaticServer

from testsupport.imagebuilds import fake_build

TOOLS = Path(sys.executable).parent
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PRODUCT = "com.example.bootseed:bookworm:amd64"


@pytest.fixture
def builds(tmp_path: Path) -> list[Path]:
    dirs = [tmp_path / "b1", tmp_path / "b2", tmp_path / "b3", tmp_path / "b4"]
    fake_build(dirs[0], built="2026-11-28T09:00:00Z")
    fake_build(dirs[1], built="2026-11-30T08:00:00Z", formats=("raw", "qcow2", "ova"))
    fake_build(dirs[2], built="2026-11-30T11:00:00Z")
    fake_build(dirs[3], name="bootseed-trixie-arm64", release="trixie", arch="arm64",
               built="2026-11-29T09:00:00Z")
    return dirs


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOLS / name), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_catalog_layout(builds, tmp_path):
    mirror = tmp_path / "mirror"
    result = catalog.make_catalog(builds, mirror, now=NOW)
    index = json.loads((mirror / "streams/v1/index.json").read_text())
    assert index["format"] == "index:1.0"
    entry = index["index"][catalog.CONTENT_ID]
    assert entry["datatype"] == "image-downloads" and entry["format"] == "products:1.0"
    assert entry["path"] == result.products
    assert entry["products"] == [PRODUCT, "com.example.bootseed:trixie:arm64"]
    products = json.loads((mirror / result.products).read_text())
    assert products["format"] == "products:1.0"
    assert products["content_id"] == catalog.CONTENT_ID
    bookworm = products["products"][PRODUCT]
    assert (bookworm["release"], bookworm["arch"], bookworm["os"]) == ("bookworm", "amd64",
                                                                         "debian")
    assert result.versions[PRODUCT] == ["20261130.1", "20261130", "20261128"]
    assert set(bookworm["versions"]["20261130"]["items"]) == {"raw", "qcow2", "ova", "manifest"}
    assert {v["firmware"] for v in bookworm["versions"].values()} == {"bios"}
    for version in bookworm["versions"].values():
        for item in version["items"].values():
            data = (mirror / item["path"]).read_bytes()
            assert len(data) == item["size"]
            assert hashlib.sha256(data).hexdigest() == item["sha256"]


def test_a_changed_image_is_refused(builds, tmp_path):
    image = builds[0] / "bootseed-bookworm-amd64.raw"
    image.write_bytes(image.read_bytes()[:-1] + b"!")
    with pytest.raises(catalog.CatalogError, match="changed since the build"):
        catalog.make_catalog(builds, tmp_path / "mirror", now=NOW)


def test_sstream_query_filters_by_release_and_arch(builds, tmp_path):
    mirror = tmp_path / "mirror"
    assert cli.main(["catalog", *map(str, builds), "--out", str(mirror)]) == 0
    with StaticServer(mirror) as srv:
        url = f"{srv.url}/streams/v1/index.json"
        found = _tool("sstream-query", "--json", url, "release=bookworm", "arch=amd64")
        other = _tool("sstream-query", "--json", url, "release=trixie", "ftype=raw")
    assert found.returncode == 0, found.stderr
    items = json.loads(found.stdout)
    assert {(i["version_name"], i["ftype"]) for i in items} == {
        ("20261128", "raw"), ("20261128", "qcow2"), ("20261128", "manifest"),
        ("20261130", "raw"), ("20261130", "qcow2"), ("20261130", "ova"),
        ("20261130", "manifest"),
        ("20261130.1", "raw"), ("20261130.1", "qcow2"), ("20261130.1", "manifest")}
    assert all(i["product_name"] == PRODUCT and i["item_url"].startswith(srv.url)
               for i in items)
    trixie = json.loads(other.stdout)
    assert [(i["arch"], i["ftype"]) for i in trixie] == [("arm64", "raw")]


def test_sstream_mirror_verifies_checksums(builds, tmp_path):
    mirror = tmp_path / "mirror"
    catalog.make_catalog(builds, mirror, now=NOW)
    with StaticServer(mirror) as srv:
        url = f"{srv.url}/streams/v1/index.json"
        good = _tool("sstream-mirror", url, str(tmp_path / "copy"), "arch=amd64")
        assert good.returncode == 0, good.stderr
        copied = tmp_path / "copy/images/bookworm/amd64/20261130/bootseed-bookworm-amd64.ova"
        assert copied.read_bytes() == (mirror / copied.relative_to(tmp_path / "copy")).read_bytes()
        assert not (tmp_path / "copy/images/trixie").exists()
        # Same size, one byte different: only the digest can tell.
        served = mirror / "images/bookworm/amd64/20261128/bootseed-bookworm-amd64.qcow2"
        data = bytearray(served.read_bytes())
        data[100] ^= 0xFF
        served.unlink()  # a hard link to the build's file: leave that one alone
        served.write_bytes(bytes(data))
        bad = _tool("sstream-mirror", url, str(tmp_path / "copy2"), "arch=amd64")
    assert bad.returncode != 0
    assert "InvalidChecksum" in bad.stderr and "20261128" in bad.stderr, bad.stderr


def _gpg(home: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], input=stdin,
                          capture_output=True, text=True, check=True, timeout=120).stdout


def test_signed_catalog_verifies_and_a_forged_one_does_not(builds, tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", "catalog@bootseed.test", "ed25519",
         "sign", "never")
    keyring = tmp_path / "pub.gpg"
    keyring.write_bytes(subprocess.run(["gpg", "--homedir", str(home), "--export"],
                                       capture_output=True, check=True).stdout)
    mirror = tmp_path / "mirror"
    assert cli.main(["catalog", *map(str, builds[:1]), "--out", str(mirror),
                     "--sign-key", "catalog@bootseed.test", "--gnupghome", str(home)]) == 0
    signed_index = json.loads(_gpg(home, "--decrypt", str(mirror / "streams/v1/index.sjson")))
    assert signed_index["index"][catalog.CONTENT_ID]["path"].endswith(".sjson")
    with StaticServer(mirror) as srv:
        url = f"{srv.url}/streams/v1/index.sjson"
        good = _tool("sstream-query", "--json", "--keyring", str(keyring), url, "ftype=raw")
        assert good.returncode == 0, good.stderr
        assert [i["version_name"] for i in json.loads(good.stdout)] == ["20261128"]
        products = mirror / "streams/v1/com.example.bootseed:images.sjson"
        products.write_text(products.read_text().replace("20261128", "20261129"))
        forged = _tool("sstream-query", "--json", "--keyring", str(keyring), url, "ftype=raw")
    assert forged.returncode != 0
