"""systemd/bootseed-generator run as a script on a fake root: which boots get the units."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GENERATOR = Path(__file__).resolve().parents[2] / "systemd" / "bootseed-generator"
UNITS = ("bootseed.service", "bootseed-final.service")
CACHE_FOUND = '{\n  "format": 1,\n  "source": "nocloud",\n  "instance_id": "i-1"\n}\n'
CACHE_NONE = '{\n  "format": 1,\n  "source": "none",\n  "instance_id": null\n}\n'


class FakeRoot:
    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.out = base / "gen"
        for d in ("proc", "run", "etc", "dev/disk/by-label", "sys/class/block", "sys/class/dmi/id"):
            (self.root / d).mkdir(parents=True)
        self.out.mkdir()
        self.cmdline("BOOT_IMAGE=/vmlinuz root=LABEL=root ro quiet")

    def cmdline(self, text: str) -> None:
        (self.root / "proc" / "cmdline").write_text(text + "\n")

    def file(self, rel: str, text: str = "") -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(self) -> tuple[bool, str]:
        # systemd hands every generator run empty directories.
        shutil.rmtree(self.out)
        self.out.mkdir()
        env = dict(os.environ, BOOTSEED_GENERATOR_ROOT=str(self.root))
        proc = subprocess.run(
            ["/bin/sh", str(GENERATOR), str(self.out), str(self.out) + ".early",
             str(self.out) + ".late"],
            env=env, capture_output=True, text=True, timeout=10, check=True,
        )
        wants = self.out / "multi-user.target.wants"
        links = sorted(p.name for p in wants.iterdir()) if wants.is_dir() else []
        verdict = (self.root / "run" / "bootseed-generator").read_text().strip()
        assert proc.stderr.strip() == f"bootseed-generator: {verdict}"
        if links:
            assert links == sorted(UNITS)
            for name in UNITS:
                assert os.readlink(wants / name) == f"/lib/systemd/system/{name}"
            assert verdict.startswith("enabled: ")
        else:
            assert verdict.startswith("disabled: ")
        return bool(links), verdict


@pytest.fixture
def fake(tmp_path: Path) -> FakeRoot:
    return FakeRoot(tmp_path)


def test_nothing_to_do_adds_no_units(fake: FakeRoot) -> None:
    enabled, verdict = fake.run()
    assert not enabled
    assert "no seed cache" in verdict


def test_seed_cache_with_a_seed_enables(fake: FakeRoot) -> None:
    fake.file("run/bootseed/seed.json", CACHE_FOUND)
    assert fake.run() == (True, "enabled: seed cache " + str(fake.root) + "/run/bootseed/seed.json")


def test_seed_cache_saying_no_seed_does_not_count(fake: FakeRoot) -> None:
    fake.file("run/bootseed/seed.json", CACHE_NONE)
    assert fake.run()[0] is False


@pytest.mark.parametrize("param", [
    "ds=nocloud;s=http://10.0.2.2:8000/seed/",
    "ds=nocloud",
    "bootseed.ds=ec2",
    "bootseed.seed=http://10.0.2.2/x/",
    "seedfrom=http://10.0.2.2/x/",
    "cloud-config-url=http://10.0.2.2/c.yaml",
    "bootseed=enabled",
    "bootseed=yes",
])
def test_seed_on_the_command_line_enables(fake: FakeRoot, param: str) -> None:
    fake.cmdline(f"root=LABEL=root ro {param} quiet")
    assert fake.run() == (True, f"enabled: {param} on the kernel command line")


@pytest.mark.parametrize("param", ["bootseed=disabled", "bootseed=off", "ds=none",
                                   "ds=NONE", "bootseed.ds=none", "bootseed=0",
                                   "bootseed=none"])
def test_off_switches_win_over_every_seed(fake: FakeRoot, param: str) -> None:
    fake.cmdline(f"root=LABEL=root seedfrom=http://10.0.2.2/x/ {param}")
    fake.file("run/bootseed/seed.json", CACHE_FOUND)
    fake.file("dev/disk/by-label/cidata")
    enabled, verdict = fake.run()
    assert not enabled
    assert param in verdict


def test_bootseed_ds_wins_over_ds(fake: FakeRoot) -> None:
    fake.cmdline("bootseed.ds=nocloud ds=none")
    assert fake.run()[0] is True
    fake.cmdline("ds=nocloud bootseed.ds=none")
    assert fake.run()[0] is False


def test_disable_file(fake: FakeRoot) -> None:
    fake.file("run/bootseed/seed.json", CACHE_FOUND)
    fake.file("etc/bootseed/disabled")
    assert fake.run() == (False, "disabled: /etc/bootseed/disabled exists")


def test_parameters_after_double_dash_belong_to_init(fake: FakeRoot) -> None:
    fake.cmdline("root=LABEL=root -- bootseed=disabled ds=nocloud")
    assert fake.run()[0] is False


def test_glob_characters_in_the_command_line_are_not_expanded(fake: FakeRoot) -> None:
    # With globbing on, "*" would expand to the files of the current directory.
    fake.cmdline("root=LABEL=root init=* ds=nocloud;s=http://h/%s?x=*")
    assert fake.run() == (True, "enabled: ds=nocloud;s=http://h/%s?x=* on the kernel command line")


@pytest.mark.parametrize("rel", ["var/lib/bootseed/seed/nocloud/meta-data",
                                 "var/lib/cloud/seed/nocloud-net/user-data"])
def test_seed_directory_enables(fake: FakeRoot, rel: str) -> None:
    fake.file(rel, "instance-id: i-1\n")
    enabled, verdict = fake.run()
    assert enabled
    assert verdict == f"enabled: seed directory /{rel.rsplit('/', 1)[0]}"


def test_empty_seed_directory_does_not_count(fake: FakeRoot) -> None:
    (fake.root / "var/lib/cloud/seed/nocloud").mkdir(parents=True)
    assert fake.run()[0] is False


@pytest.mark.parametrize("label", ["cidata", "CIDATA", "config-2", "CONFIG-2"])
def test_disc_label_enables(fake: FakeRoot, label: str) -> None:
    (fake.root / "dev/disk/by-label" / label).symlink_to("../../sr0")
    assert fake.run() == (True, f"enabled: disc labelled {label}")


def test_other_labels_do_not_count(fake: FakeRoot) -> None:
    (fake.root / "dev/disk/by-label/bootseed-root").symlink_to("../../vda1")
    assert fake.run()[0] is False


def test_optical_disc_with_a_medium_enables(fake: FakeRoot) -> None:
    fake.file("sys/class/block/sr0/size", "0\n")
    assert fake.run()[0] is False
    fake.file("sys/class/block/sr1/size", "2048\n")
    assert fake.run() == (True, "enabled: optical disc sr1 (OVF environment?)")


@pytest.mark.parametrize(("files", "expected"), [
    ({"sys_vendor": "Amazon EC2"}, True),
    ({"bios_vendor": "amazon ec2"}, True),
    ({"sys_vendor": "Amazon", "board_asset_tag": "i-0123456789abcdef0"}, True),
    ({"sys_vendor": "Amazon", "board_asset_tag": "none"}, False),
    ({"product_uuid": "EC2E1916-9099-7CAF-FD21-012345678901"}, True),
    ({"sys_vendor": "QEMU", "product_uuid": "4c4c4544-0000-1000-8000-000000000000"}, False),
])
def test_dmi_ec2(fake: FakeRoot, files: dict[str, str], expected: bool) -> None:
    for name, value in files.items():
        fake.file(f"sys/class/dmi/id/{name}", value + "\n")
    assert fake.run()[0] is expected


@pytest.mark.parametrize(("files", "expected"), [
    ({"product_name": "OpenStack Nova"}, "enabled: DMI: product_name OpenStack Nova (OpenStack)"),
    ({"sys_vendor": "OpenStack Foundation"},
     "enabled: DMI: sys_vendor OpenStack Foundation (OpenStack)"),
    ({"chassis_asset_tag": "SAP CCloud VM"},
     "enabled: DMI: chassis_asset_tag SAP CCloud VM (OpenStack)"),
    ({"product_name": "OpenStack Novax"}, None),
    ({"sys_vendor": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)"}, None),
])
def test_dmi_openstack(fake: FakeRoot, files: dict[str, str], expected: str | None) -> None:
    for name, value in files.items():
        fake.file(f"sys/class/dmi/id/{name}", value + "\n")
    enabled, verdict = fake.run()
    assert enabled is (expected is not None)
    if expected is not None:
        assert verdict == expected


def test_missing_proc_and_sys_mean_nothing_to_do(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    (root / "run").mkdir(parents=True)
    out = tmp_path / "gen"
    out.mkdir()
    proc = subprocess.run(["/bin/sh", str(GENERATOR), str(out)], capture_output=True, text=True,
                          env=dict(os.environ, BOOTSEED_GENERATOR_ROOT=str(root)), timeout=10)
    assert proc.returncode == 0
    assert "disabled" in proc.stderr
    assert list(out.iterdir()) == []


def test_usage_error_without_output_directory() -> None:
    proc = subprocess.run(["/bin/sh", str(GENERATOR)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def test_runs_under_dash_and_is_executable() -> None:
    assert os.access(GENERATOR, os.X_OK)
    assert GENERATOR.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["dash", "-n", str(GENERATOR)], check=True, timeout=10)
