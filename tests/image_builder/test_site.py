"""The landing page: a headless Chromium loads it from a local server; links, checksums."""

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin
from urllib.request import urlopen

import pytest
from bootseed.image_builder import catalog, cli, site
from bootseed.image_builder.mocks.static import StaticServer

from testsupport.imagebuilds import fake_build

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class PageParser(HTMLParser):
    """hrefs, the (href, sha256) pairs of each table row, headings, images, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.rows: list[tuple[str, str]] = []
        self.headings: list[str] = []
        self.title = ""
        self.images_without_alt = 0
        self.scripts = 0
        self._row_href = ""
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        if tag in ("a", "link") and attr.get("href"):
            self.hrefs.append(attr["href"])
            if tag == "a":
                self._row_href = attr["href"]
        if tag == "tr":
            self._row_href = ""
        if tag == "img" and not attr.get("alt"):
            self.images_without_alt += 1
        if tag == "script":
            self.scripts += 1
        self._in.append(tag if tag != "code" or attr.get("class") != "sha256" else "sha256")

    def handle_endtag(self, tag):
        if self._in:
            self._in.pop()

    def handle_data(self, data):
        current = self._in[-1] if self._in else ""
        if current == "sha256":
            self.rows.append((self._row_href, data.strip()))
        elif current == "title":
            self.title += data
        elif current in ("h1", "h2", "h3"):
            self.headings.append(data.strip())


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    fake_build(tmp_path / "old", built="2026-11-20T09:00:00Z", kernel="6.1.0-27-cloud-amd64")
    fake_build(tmp_path / "new", built="2026-11-30T09:00:00Z", formats=("qcow2", "ova"),
               firmware="both")
    out = tmp_path / "mirror"
    catalog.make_catalog([tmp_path / "old", tmp_path / "new"], out, now=NOW)
    assert cli.main(["site", "--catalog", str(out), "--out", str(out)]) == 0
    return out


def test_page_structure_latest_first_and_facts(mirror):
    text = (mirror / "index.html").read_text()
    page = PageParser()
    page.feed(text)
    assert page.title == "bootseed images"
    assert page.scripts == 0 and page.images_without_alt == 0
    builds = [h for h in page.headings if h.startswith("Debian ")]
    assert builds == ["Debian bookworm amd64, version 20261130",
                      "Debian bookworm amd64, version 20261120"]
    assert text.index("6.1.0-28-cloud-amd64") < text.index("6.1.0-27-cloud-amd64")
    assert "1:9.2p1-2+deb12u3" in text  # a package version from the manifest
    assert "bootseed_0.1.0_all.deb" in text
    # Each build says which firmware it boots on; the newest (a "both" build) first.
    assert text.index("<dt>Firmware</dt><dd>BIOS or UEFI (no Secure Boot)</dd>") < \
        text.index("<dt>Firmware</dt><dd>BIOS</dd>")
    assert "file=/usr/share/OVMF/OVMF_CODE.fd" in text
    for needle in ("qemu-system-x86_64", "virt-install", "bootseed-image seed-iso cidata",
                   "ds=nocloud;s=", "<code>user-data</code>", "<code>seedfrom</code>"):
        assert needle in text, needle
    assert all(not h.startswith(("/", "http:", "https:", "file:")) for h in page.hrefs)


def test_every_link_resolves_and_every_checksum_matches(mirror):
    page = PageParser()
    page.feed((mirror / "index.html").read_text())
    assert len(page.rows) == 6  # raw, qcow2, manifest / qcow2, ova, manifest
    with StaticServer(mirror) as srv:
        base = f"{srv.url}/index.html"
        for href in page.hrefs:
            with urlopen(urljoin(base, href), timeout=10) as reply:
                assert reply.status == 200, href
        for href, digest in page.rows:
            with urlopen(urljoin(base, href), timeout=10) as reply:
                assert hashlib.sha256(reply.read()).hexdigest() == digest, href


def test_headless_chromium_renders_the_page(mirror, tmp_path):
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/bootstrap installs it)")
    shot = tmp_path / "landing.png"
    with StaticServer(mirror) as srv:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
             "--window-size=1200,900", f"{srv.url}/index.html"],
            capture_output=True, text=True, timeout=90, check=False)
        requested = [r.path for r in srv.requests]
    print(f"screenshot: {shot}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank frame
    assert "/index.html" in requested and f"/{site.STYLESHEET}" in requested


def test_site_without_a_catalog_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["site", "--catalog", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "index.json" in capsys.readouterr().err
