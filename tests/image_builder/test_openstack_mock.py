"""The lab's OpenStack metadata service mock speaks the protocol, and the lab wires it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from bootseed.image_builder import debinstall, qemu
from bootseed.image_builder.lab import BootLab, BootOptions, LabError
from bootseed.image_builder.mocks.openstack import MockOpenStack

META = json.dumps({"uuid": "u-1"}).encode()


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_versions_files_and_404s() -> None:
    files = {"meta_data.json": META, "network_data.json": b"{}", "user_data": b"#!/bin/sh\n"}
    with MockOpenStack(files) as nova:
        status, listing = get(nova.url + "/openstack/")
        assert status == 200 and listing.decode().splitlines()[-1] == "latest"
        assert get(nova.url + "/openstack")[1] == listing
        assert get(nova.url + "/openstack/latest/meta_data.json") == (200, META)
        assert get(nova.url + "/openstack/2015-10-15/network_data.json")[0] == 200
        # network_data.json came with 2015-10-15; older versions do not have it.
        assert get(nova.url + "/openstack/2013-04-04/network_data.json")[0] == 404
        assert get(nova.url + "/openstack/latest/vendor_data.json")[0] == 404
        assert get(nova.url + "/openstack/1999-01-01/meta_data.json")[0] == 404
        assert get(nova.url + "/latest/meta-data/")[0] == 404
        assert [r.path for r in nova.requests][:2] == ["/openstack/", "/openstack"]


def test_from_seed_dir_needs_meta_data(tmp_path: Path) -> None:
    (tmp_path / "user_data").write_text("#cloud-config\n")
    with pytest.raises(ValueError, match=r"no meta_data\.json"):
        MockOpenStack.from_seed_dir(tmp_path)
    with pytest.raises(ValueError, match="unknown files"):
        MockOpenStack({"meta_data.json": META, "meta-data": b""})


def test_lab_gives_openstack_boots_nova_dmi_and_refuses_two_services(tmp_path: Path) -> None:
    opts = BootOptions(openstack_dir=tmp_path)
    assert BootLab._smbios(opts) == qemu.OPENSTACK_SMBIOS
    assert BootLab._smbios(BootOptions(imds_dir=tmp_path)) == qemu.EC2_SMBIOS
    assert BootLab._smbios(BootOptions()) is None
    assert BootLab.seed_given(opts)
    with pytest.raises(LabError, match="choose one"):
        BootLab._start_openstack(BootOptions(openstack_dir=tmp_path, imds_dir=tmp_path))
    assert "product=OpenStack Nova" in qemu.OPENSTACK_SMBIOS.argument()


def test_install_debs_refuses_a_package_set_without_bootseed(tmp_path: Path) -> None:
    debs = debinstall.DebSet(key="k", directory=tmp_path, debs=(), reused=True)
    with pytest.raises(debinstall.DebInstallError, match="bootseed plus"):
        debinstall.install_debs(tmp_path, debs, "6.1", packages=("bootseed-initramfs",))
    assert not (tmp_path / "tmp").exists()
