"""Build the Debian packages from a copy of the tree, run lintian, check what they hold."""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2]
PY = "usr/lib/python3/dist-packages"


@dataclass
class Deb:
    path: Path
    fields: dict[str, str]
    files: dict[str, tarfile.TarInfo]
    control: dict[str, str]  # maintainer scripts and conffiles, by name

    def text(self, member: str) -> str:
        proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(self.path)],
                              capture_output=True, check=True, timeout=60)
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            extracted = tar.extractfile("./" + member)
            assert extracted is not None, member
            return extracted.read().decode()


def _read_deb(path: Path, tmp: Path) -> Deb:
    fields: dict[str, str] = {}
    info = subprocess.run(["dpkg-deb", "-f", str(path)], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    key = ""
    for line in info.splitlines():
        if line[:1].isspace():
            fields[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True,
                             check=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(listing)) as tar:
        files = {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}
    ctrl = tmp / f"{path.name}.control"
    subprocess.run(["dpkg-deb", "-e", str(path), str(ctrl)], check=True, timeout=60)
    control = {p.name: p.read_text() for p in ctrl.iterdir() if p.is_file()}
    return Deb(path, fields, files, control)


@pytest.fixture(scope="module")
def built(deb_dir: Path) -> dict[str, Deb]:
    debs = {p.name.split("_")[0]: _read_deb(p, deb_dir) for p in deb_dir.glob("*.deb")}
    assert set(debs) == {"bootseed", "bootseed-initramfs", "bootseed-cloud-init-compat"}
    return debs


def test_lintian_reports_no_errors_or_warnings(built: dict[str, Deb]) -> None:
    changes = next(built["bootseed"].path.parent.glob("*.changes"))
    proc = subprocess.run(["lintian", "--fail-on", "error,warning", str(changes)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:")]


def test_agent_package_contents(built: dict[str, Deb]) -> None:
    deb = built["bootseed"]
    for path in ("usr/bin/bootseed", f"{PY}/bootseed/late/cli.py",
                 f"{PY}/bootseed/contract/seedcache.py", f"{PY}/bootseed/late/modules/runcmd.py",
                 "lib/systemd/system/bootseed.service",
                 "lib/systemd/system/bootseed-final.service",
                 "lib/systemd/system-generators/bootseed-generator",
                 "lib/systemd/system/bootseed-volume@.service",
                 "lib/udev/rules.d/90-bootseed-volume.rules",
                 "usr/share/man/man1/bootseed.1.gz", "usr/share/man/man1/bootseed-run.1.gz",
                 "usr/share/man/man1/bootseed-status.1.gz",
                 "usr/share/man/man8/bootseed-generator.8.gz",
                 "usr/share/doc/bootseed/copyright"):
        assert path in deb.files, path
    assert deb.files["usr/bin/bootseed"].mode & 0o111
    assert deb.files["lib/systemd/system-generators/bootseed-generator"].mode & 0o111
    # The image builder and boot lab are development tools, not part of an installed system.
    assert not [p for p in deb.files if "image_builder" in p or p.endswith("bootseed-image")]
    # A man page for every verb the CLI has (a module collect_logs is verb collect-logs).
    verbs = sorted(p.stem.replace("_", "-")
                   for p in (SOURCE / "late" / "commands").glob("[a-z]*.py"))
    for verb in verbs:
        assert f"usr/share/man/man1/bootseed-{verb}.1.gz" in deb.files, verb
    entry = deb.text("usr/bin/bootseed")
    assert entry.startswith("#! /usr/bin/python3") or entry.startswith("#!/usr/bin/python3")
    assert "bootseed.late.cli" in entry


def test_agent_depends_on_debian_packages_only(built: dict[str, Deb]) -> None:
    depends = {d.strip().split()[0] for d in built["bootseed"].fields["Depends"].split(",")}
    assert {"python3-yaml", "python3-cryptography", "python3-jsonschema",
            "python3-jinja2"} <= depends
    # HTTP is the standard library's (bootseed.early.http), for every stage.
    assert "python3-requests" not in depends
    assert "python3:any" in depends or "python3" in depends
    # The late agent needs no pyroute2 (networkd applies the network config) and there
    # is no libblkid binding: the package relies on the standard-library fallbacks.
    assert not {"python3-pyroute2", "python3-pylibblkid", "python3-blkid"} & depends
    # The early stage's network path is pyroute2's netlink, on both initramfs generators.
    initramfs = {d.strip().split()[0]
                 for d in built["bootseed-initramfs"].fields["Depends"].split(",")}
    assert "python3-pyroute2" in initramfs


def test_units_are_not_enabled_or_started_by_the_package(built: dict[str, Deb]) -> None:
    deb = built["bootseed"]
    scripts = "".join(deb.control.get(n, "") for n in ("postinst", "prerm", "postrm"))
    assert "deb-systemd-helper enable" not in scripts
    assert "deb-systemd-invoke start" not in scripts
    assert not [p for p in deb.files if p.startswith("etc/systemd")]
    for unit in ("bootseed.service", "bootseed-final.service"):
        lines = deb.text(f"lib/systemd/system/{unit}").splitlines()
        assert "[Service]" in lines
        assert "[Install]" not in lines


def test_initramfs_package(built: dict[str, Deb]) -> None:
    deb = built["bootseed-initramfs"]
    # Every hook and boot script of the tree, executable.
    tree = SOURCE / "initramfs-hooks" / "initramfs-tools"
    shipped = [p.relative_to(tree) for d in ("hooks", "scripts") for p in (tree / d).rglob("*")
               if p.is_file()]
    assert Path("hooks/bootseed") in shipped
    assert Path("scripts/init-premount/bootseed") in shipped
    for rel in shipped:
        path = f"usr/share/initramfs-tools/{rel}"
        assert path in deb.files, path
        assert deb.files[path].mode & 0o111, path
    assert "etc/initramfs-tools/conf.d/bootseed" in deb.files
    assert "/etc/initramfs-tools/conf.d/bootseed" in deb.control["conffiles"]
    conf = deb.text("etc/initramfs-tools/conf.d/bootseed").splitlines()
    # The system python3, and Debian's pyroute2 for the network (see docs/packaging.md).
    assert "BOOTSEED_VENV=/usr" in conf
    assert 'BOOTSEED_WITH="blkid pyroute2"' in conf
    depends = deb.fields["Depends"]
    assert "bootseed (= " in depends
    assert "initramfs-tools" in depends
    # The initramfs SSH server for a root that will not mount (docs/root-will-not-mount.md).
    assert "dropbear-bin" in depends
    assert "BOOTSEED_SSHD=yes" in conf
    for script in ("scripts/panic/bootseed-sshd", "scripts/init-bottom/bootseed-sshd"):
        assert f"usr/share/initramfs-tools/{script}" in deb.files, script
    # dh_installinitramfs: dpkg activates initramfs-tools' trigger when the package is
    # installed, upgraded or removed, so the initramfs gains or loses the hook.
    assert "activate-noawait update-initramfs" in deb.control["triggers"].splitlines()


def test_cloud_init_compat_package(built: dict[str, Deb]) -> None:
    deb = built["bootseed-cloud-init-compat"]
    assert deb.files["usr/bin/cloud-init"].mode & 0o111
    assert "bootseed.late.compat.cli" in deb.text("usr/bin/cloud-init")
    assert "usr/share/man/man1/cloud-init.1.gz" in deb.files
    # The code is bootseed's; this package only adds the command.
    assert not [p for p in deb.files if p.startswith(PY)]
    assert f"{PY}/bootseed/late/compat/cli.py" in built["bootseed"].files
    assert "usr/bin/cloud-init" not in built["bootseed"].files
    assert "bootseed (= " in deb.fields["Depends"]
    assert deb.fields["Conflicts"] == "cloud-init" and deb.fields["Replaces"] == "cloud-init"
    # Deliberately no Provides (debian/control says why).
    assert "Provides" not in deb.fields
