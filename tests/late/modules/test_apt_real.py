"""apt_configure and package_update_upgrade_install against real apt, on real parts.

The target is a real Debian bookworm tree (the image builder's cached base
tree, under an overlay so it stays pristine); apt-get runs in it under chroot
and talks to the lab's signed repository, HKP keyserver and forward proxy on
127.0.0.1. The boot suite proves the same in a booted guest.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.contract.problems import Level
from bootseed.image_builder.aptchroot import apt_chroot
from bootseed.image_builder.basetree import BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.mocks.aptrepo import LabRepo, build_lab_repo
from bootseed.image_builder.mocks.keyserver import HkpKeyserver
from bootseed.image_builder.mocks.proxy import ForwardProxy
from bootseed.image_builder.mocks.static import StaticServer
from bootseed.late.modules import apt_configure, package_update_upgrade_install
from bootseed.late.target import TargetRoot

from testsupport.targetfs import make_ctx

pytestmark = pytest.mark.root


def _installed(root: Path, name: str) -> str | None:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Status} ${Version}",
                          name], capture_output=True, text=True, check=False)
    if out.returncode != 0 or "install ok installed" not in out.stdout:
        return None
    return out.stdout.rsplit(" ", 1)[1]


@pytest.fixture(scope="module")
def lab_repo() -> LabRepo:
    return build_lab_repo(cache_root())


@pytest.fixture
def debian_root(tmp_path: Path, lab_repo: LabRepo) -> Iterator[TargetRoot]:
    if os.geteuid() != 0:
        pytest.skip("needs root: overlay mount and chroot")
    base = ensure_base_tree(BaseTreeSpec(), cache_root())
    layers = {name: tmp_path / name for name in ("upper", "work", "root")}
    for path in layers.values():
        path.mkdir()
    options = f"lowerdir={base.root},upperdir={layers['upper']},workdir={layers['work']}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(layers["root"])],
                   check=True)
    root = layers["root"]
    try:
        with apt_chroot(root):
            deb = lab_repo.test_deb("1.0")
            (root / "tmp" / deb.name).write_bytes(deb.read_bytes())
            subprocess.run(["chroot", str(root), "dpkg", "-i", f"/tmp/{deb.name}"],
                           check=True, capture_output=True)
            yield TargetRoot(root)
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=False)


@pytest.fixture
def servers(lab_repo: LabRepo) -> Iterator[tuple[StaticServer, HkpKeyserver, ForwardProxy]]:
    with StaticServer(lab_repo.root) as repo, HkpKeyserver(
        {k.fingerprint: k.armored for k in lab_repo.keys.values()}
    ) as keyserver:
        route = {f"127.0.0.1:{repo.server_address[1]}": repo.server_address[1]}
        with ForwardProxy(route) as proxy:
            yield repo, keyserver, proxy  # type: ignore[misc]


def test_sources_keys_proxy_update_upgrade_and_pinned_install(
    debian_root: TargetRoot, lab_repo: LabRepo,
    servers: tuple[StaticServer, HkpKeyserver, ForwardProxy],
) -> None:
    repo, keyserver, proxy = servers
    assert _installed(debian_root.root, "bootseed-lab-hello") == "1.0"
    cfg = {
        "apt": {
            "sources_list": "# the lab has no distribution mirror\n",
            "proxy": proxy.url,
            "sources": {
                "lab.list": {"source": f"deb {repo.url}/ lab main",
                             "key": lab_repo.keys["lab"].armored},
                "extra": {"source": f"deb [signed-by=$KEY_FILE] {repo.url}/ lab-extra main",
                          "keyid": lab_repo.keys["lab-extra"].keyid,
                          "keyserver": keyserver.url},
            },
        },
        "package_update": True,
        "package_upgrade": True,
        "packages": ["tree", ["hello", "2.10-3"], "no-such-package-anywhere"],
    }
    ctx = make_ctx(debian_root, cfg, name="apt_configure")
    apt_configure.handle(ctx)
    assert ctx.problems == []
    root = debian_root.root
    lab_list = (root / "etc/apt/sources.list.d/lab.list").read_text()
    assert lab_list == f"deb [signed-by=/etc/apt/keyrings/lab.gpg] {repo.url}/ lab main\n"
    extra = (root / "etc/apt/sources.list.d/extra.list").read_text()
    assert extra == f"deb [signed-by=/etc/apt/keyrings/extra.gpg] {repo.url}/ lab-extra main\n"
    assert (root / "etc/apt/keyrings/extra.gpg").stat().st_size > 0
    assert not (root / "etc/apt/trusted.gpg").exists()
    assert keyserver.requests_to("/pks/lookup")
    proxy_conf = (root / "etc/apt/apt.conf.d/90cloud-init-aptproxy").read_text()
    assert proxy_conf == f'Acquire::http::Proxy "{proxy.url}";\n'

    pkg_ctx = make_ctx(debian_root, cfg, name="package_update_upgrade_install")
    package_update_upgrade_install.handle(pkg_ctx)
    assert _installed(root, "bootseed-lab-hello") == "2.0"  # upgraded from 1.0
    assert _installed(root, "hello") == "2.10-3"
    assert _installed(root, "tree") is not None
    assert [(p.where, p.level) for p in pkg_ctx.problems] == [("packages", Level.ERROR)]
    assert "no-such-package-anywhere" in pkg_ctx.problems[0].message
    assert "Unable to locate package" in pkg_ctx.problems[0].message  # apt's own words
    # Every apt download went through the proxy.
    fetched = [r.path for r in proxy.requests]
    assert any(p.endswith("/dists/lab/InRelease") for p in fetched)
    assert any("bootseed-lab-hello_2.0_all.deb" in p for p in fetched)


def test_a_source_whose_key_cannot_be_had_is_not_written(
    debian_root: TargetRoot, servers: tuple[StaticServer, HkpKeyserver, ForwardProxy],
) -> None:
    repo, keyserver, _ = servers
    cfg = {"apt": {"preserve_sources_list": True, "sources": {
        "bad": {"source": f"deb {repo.url}/ lab main", "keyid": "0123456789ABCDEF",
                "keyserver": keyserver.url},
        "good": {"source": f"deb [trusted=yes] {repo.url}/ lab main"}}}}
    ctx = make_ctx(debian_root, cfg)
    apt_configure.handle(ctx)
    assert [p.where for p in ctx.problems] == ["apt.sources.bad"]
    assert "HTTP 404" in ctx.problems[0].message
    assert not (debian_root.root / "etc/apt/sources.list.d/bad.list").exists()
    assert (debian_root.root / "etc/apt/sources.list.d/good.list").is_file()
