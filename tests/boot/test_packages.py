"""End-to-end: apt sources, keys, a proxy, update, upgrade and install in a booted guest.

Two guests boot at once (one per core) from the same image, which carries
version 1.0 of the lab's test package:

- the good seed adds the lab repository twice (one suite trusted by an inline
  key, one by a key id fetched from the lab keyserver over HKP), sends apt
  through the lab's recording proxy, updates, upgrades (1.0 -> 2.0) and
  installs ``tree`` and a pinned ``hello``;
- the broken seed asks for a package no repository has: the status names it,
  the run ends degraded, and everything else in the seed still applies.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import yaml
from bootseed.image_builder import labnet
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult
from bootseed.image_builder.mocks.aptrepo import TEST_PACKAGE, LabRepo

pytestmark = pytest.mark.boot

TIMEOUT = 900.0
PACKAGES_FILE = "/var/lib/lab-packages.txt"
MARKER = "/var/tmp/other-modules-ran"
SOURCES = ["/etc/apt/sources.list", "/etc/apt/sources.list.d/lab.list",
           "/etc/apt/sources.list.d/extra.list", "/etc/apt/apt.conf.d/90cloud-init-aptproxy",
           PACKAGES_FILE, MARKER]
REPO = f"http://{labnet.REPO_ADDR}/"
# Runs in the final stage after package_update_upgrade_install (scripts_user).
LIST_PACKAGES = f"""#!/bin/sh
dpkg-query -W -f='${{Package}} ${{Version}}\\n' tree hello {TEST_PACKAGE} \\
    > {PACKAGES_FILE} 2>&1 || true
"""


def _seed_dir(tmp_path: Path, name: str, cloud_config: dict) -> Path:
    seed = tmp_path / name
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: iid-{name}\nlocal-hostname: {name}\n")
    message = MIMEMultipart()
    message.attach(MIMEText("#cloud-config\n" + yaml.safe_dump(cloud_config), "cloud-config"))
    message.attach(MIMEText(LIST_PACKAGES, "x-shellscript"))
    (seed / "user-data").write_text(message.as_string())
    return seed


def _good_config(repo: LabRepo) -> dict:
    return {
        "apt": {
            "sources_list": "# the lab has no distribution mirror\n",
            "proxy": f"http://{labnet.PROXY_ADDR}:{labnet.PROXY_PORT}",
            "sources": {
                "lab.list": {"source": f"deb {REPO} lab main", "key": repo.keys["lab"].armored},
                "extra": {"source": f"deb [signed-by=$KEY_FILE] {REPO} lab-extra main",
                          "keyid": repo.keys["lab-extra"].keyid,
                          "keyserver": f"hkp://{labnet.KEYSERVER_ADDR}"},
            },
        },
        "package_update": True,
        "package_upgrade": True,
        "packages": ["tree", ["hello", "2.10-3"]],
    }


def _broken_config(repo: LabRepo) -> dict:
    return {
        "apt": {"sources_list": "# the lab has no distribution mirror\n",
                "sources": {"lab.list": {"source": f"deb {REPO} lab main",
                                         "key": repo.keys["lab"].armored}}},
        "packages": ["hello", "bootseed-no-such-package"],
        "runcmd": [f"touch {MARKER}"],
        "write_files": [{"path": "/etc/lab-written", "content": "still applied\n"}],
    }


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-3000:]}"


def _installed(result: BootResult) -> dict[str, str]:
    report = result.report
    assert report is not None, _diagnose(result)
    text = (report.file_bytes(PACKAGES_FILE) or b"").decode()
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def test_sources_keys_proxy_upgrade_and_a_missing_package(
    lab_image: Path, lab_repo: LabRepo, tmp_path: Path,
) -> None:
    keys = {k.fingerprint: k.armored for k in lab_repo.keys.values()}
    runs = []
    for name, config in (("apt-good", _good_config(lab_repo)),
                         ("apt-broken", _broken_config(lab_repo))):
        seed = _seed_dir(tmp_path, name, config)
        lab = BootLab(lab_image, tmp_path / f"boots-{name}")
        files = SOURCES + (["/etc/lab-written"] if name == "apt-broken" else [])
        runs.append((lab, BootOptions(nocloud_dir=seed, apt_repo=lab_repo.root, apt_keys=keys,
                                      report_files=files, timeout=TIMEOUT,
                                      status_timeout=600)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        good, broken = pool.map(lambda run: run[0].boot(run[1]), runs)

    # -- the good seed ---------------------------------------------------------
    report = good.report
    assert report is not None and good.ok, _diagnose(good)
    assert report.state == "done" and not report.module_errors, _diagnose(good)
    assert _installed(good) == {TEST_PACKAGE: "2.0", "hello": "2.10-3",
                                "tree": _installed(good).get("tree", "missing")}
    assert _installed(good)["tree"] != "missing"
    lab_list = (report.file_bytes("/etc/apt/sources.list.d/lab.list") or b"").decode()
    assert lab_list == f"deb [signed-by=/etc/apt/keyrings/lab.gpg] {REPO} lab main\n"
    extra = (report.file_bytes("/etc/apt/sources.list.d/extra.list") or b"").decode()
    assert extra == f"deb [signed-by=/etc/apt/keyrings/extra.gpg] {REPO} lab-extra main\n"
    assert report.file_bytes("/etc/apt/sources.list") == b"# the lab has no distribution mirror\n"
    lookups = good.lab_requests["keyserver"]
    assert [r.path.rsplit("search=", 1)[1] for r in lookups] == [
        "0x" + lab_repo.keys["lab-extra"].keyid]
    proxied = [r.path for r in good.lab_requests["proxy"]]
    assert any(p.endswith("/dists/lab-extra/InRelease") for p in proxied), proxied
    assert any(f"{TEST_PACKAGE}_2.0_all.deb" in p for p in proxied), proxied
    # Through the proxy only: the repository saw nothing the proxy did not send.
    assert len(good.lab_requests["repo"]) == len(proxied)

    # -- the broken seed ---------------------------------------------------------
    report = broken.report
    assert report is not None and broken.ok, _diagnose(broken)
    status = report.status or {}
    assert report.state == "done" and status.get("degraded") is True, _diagnose(broken)
    named = [p for p in report.problems if "bootseed-no-such-package" in p.get("message", "")]
    assert named and "Unable to locate package" in named[0]["message"], report.problems
    assert _installed(broken).get("hello") == "2.10-3"
    assert report.file_bytes(MARKER) is not None  # runcmd ran
    assert report.file_bytes("/etc/lab-written") == b"still applied\n"
    print(f"apt boots: good {good.seconds:.0f}s, broken {broken.seconds:.0f}s wall")
    shutil.rmtree(tmp_path / "boots-apt-good", ignore_errors=True)
