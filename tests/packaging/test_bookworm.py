"""The built packages in a stock bookworm tree: only Debian's Python libraries, real apt.

The tree is the boot lab's cached base tree (``ensure_base_tree``; built once and shared
with the boot suite) seen through an overlay, so nothing in the cache changes. apt installs
the two .deb files with their Debian dependencies (python3-yaml 6.0, python3-cryptography
38, ...), the initramfs is rebuilt with the hook, the agent runs a real seed on the tree's
own root, and ``apt remove`` takes everything away again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bootseed.image_builder.basetree import BaseTreeSpec, ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.mocks.sink import PhoneHomeSink

pytestmark = pytest.mark.root

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8"}


@dataclass
class Chroot:
    root: Path
    kernel: str

    def run(self, *argv: str, check: bool = True, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["chroot", str(self.root), *argv], capture_output=True,
                              text=True, timeout=timeout, env=env or APT_ENV)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: exit {proc.returncode}\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def initramfs_files(self) -> list[str]:
        out = self.run("lsinitramfs", f"/boot/initrd.img-{self.kernel}").stdout
        return out.splitlines()


def _mount(*argv: str) -> None:
    subprocess.run(["mount", *argv], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def chroot(tmp_path_factory: pytest.TempPathFactory, deb_dir: Path) -> Iterator[Chroot]:
    if os.geteuid() != 0:
        pytest.skip("needs root (overlay mount, chroot)")
    cache = cache_root()
    base = ensure_base_tree(BaseTreeSpec(), cache)
    work = tmp_path_factory.mktemp("bookworm")
    upper, ovl, merged = work / "upper", work / "work", work / "root"
    for d in (upper, ovl, merged):
        d.mkdir()
    mounted: list[Path] = []
    try:
        _mount("-t", "overlay", "overlay", "-o",
               f"lowerdir={base.root},upperdir={upper},workdir={ovl}", str(merged))
        mounted.append(merged)
        for fs, where in (("proc", "proc"), ("sysfs", "sys")):
            _mount("-t", fs, fs, str(merged / where))
            mounted.append(merged / where)
        _mount("--bind", "/dev", str(merged / "dev"))
        mounted.append(merged / "dev")
        # The base tree's downloads cache, so a rerun fetches only the package index.
        archives = cache / "debs"
        archives.mkdir(parents=True, exist_ok=True)
        _mount("--bind", str(archives), str(merged / "var/cache/apt/archives"))
        mounted.append(merged / "var/cache/apt/archives")
        shutil.copy("/etc/resolv.conf", merged / "etc/resolv.conf")
        for deb in deb_dir.glob("*.deb"):
            shutil.copy(deb, merged / "tmp" / deb.name)
        yield Chroot(merged, base.kernel_version)
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def installed(chroot: Chroot) -> Chroot:
    chroot.run("apt-get", "update", "-q")
    # The agent and the initramfs stage; the cloud-init command is not part of this system.
    debs = sorted(f"/tmp/{p.name}" for p in (chroot.root / "tmp").glob("bootseed*.deb")
                  if not p.name.startswith("bootseed-cloud-init-compat_"))
    assert len(debs) == 2
    chroot.run("apt-get", "install", "-y", "-q", "--no-install-recommends", *debs)
    return chroot


def test_installs_with_debian_libraries_only(installed: Chroot) -> None:
    probe = ("import cryptography, jinja2, yaml; "
             "from importlib.metadata import version; "
             "print(cryptography.__version__, jinja2.__version__, "
             "yaml.__version__, version('jsonschema'))")
    versions = installed.run("python3", "-c", probe).stdout.split()
    # bookworm's versions, not the build host's venv.
    assert versions[0].startswith("38.")
    assert versions[3].startswith("4.10.")
    # bootseed-initramfs depends on Debian's pyroute2 (the early stage's netlink).
    pyroute2 = installed.run("dpkg-query", "-W", "-f", "${Version}", "python3-pyroute2")
    assert pyroute2.stdout.startswith("0.7."), pyroute2.stdout
    installed.run("python3", "-c", "import pyroute2.iproute.linux")
    assert installed.run("bootseed", "--version").stdout.strip() == "bootseed 0.1.0"
    for verb in ("run", "status", "seed", "schema", "query", "analyze", "clean", "userdata"):
        installed.run("bootseed", verb, "--help")


def test_units_verify(installed: Chroot) -> None:
    proc = installed.run("systemd-analyze", "verify", "--man=no",
                         "/lib/systemd/system/bootseed.service",
                         "/lib/systemd/system/bootseed-final.service", check=False)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "bootseed" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_initramfs_has_the_early_stage(installed: Chroot) -> None:
    files = installed.initramfs_files()
    assert "scripts/init-premount/bootseed" in files
    assert "etc/bootseed-early.conf" in files
    # The hook took the interpreter and the stage's modules from the system python3.
    assert "usr/bin/python3" in files
    assert any(f.endswith("bootseed/early/premount.pyc") for f in files)
    # pyroute2's netlink, by default; its package __init__ (NDB, sqlite3) is left out.
    assert any(f.endswith("pyroute2/iproute/linux.pyc") for f in files)
    assert not any(f.endswith("pyroute2/ndb/main.pyc") for f in files)


USER_DATA = """\
## template: jinja
#cloud-config
hostname: {{ v1.local_hostname }}-x
users:
  - default
  - name: alice
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf3qZP9YQ2v8m7xK9pL3tR5wB1cD2eF4gH6iJ8kL0mN a@h
write_files:
  - path: /etc/bootseed-pkg-test.txt
    content: from the seed
runcmd:
  - [sh, -c, "echo ran > /root/runcmd-ran"]
phone_home:
  url: PHONE_HOME_URL
  post: [instance_id, hostname]
"""


def _run_agent(chroot: Chroot, user_data: str, sink: PhoneHomeSink) -> dict[str, object]:
    seed = chroot.root / "var/lib/bootseed/seed/nocloud"
    seed.mkdir(parents=True, exist_ok=True)
    (seed / "meta-data").write_text("instance-id: iid-pkg-01\nlocal-hostname: pkgtest\n")
    (seed / "user-data").write_text(user_data.replace("PHONE_HOME_URL",
                                                      sink.url + "/$INSTANCE_ID"))
    shutil.rmtree(chroot.root / "run/bootseed", ignore_errors=True)
    shutil.rmtree(chroot.root / "var/lib/bootseed/instances", ignore_errors=True)
    (chroot.root / "var/lib/bootseed/instance").unlink(missing_ok=True)
    chroot.run("bootseed", "seed", "fetch", "--cmdline", "ds=nocloud", "--no-discs",
               "--out", "/run/bootseed")
    proc = chroot.run("bootseed", "run", "--stage", "all", "--network-timeout", "0",
                      "--console", "/dev/stderr", "--json", check=False)
    status = json.loads(chroot.run("bootseed", "status", "--json", check=False).stdout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return status


def _failed(status: dict[str, object]) -> list[str]:
    modules = status.get("modules")
    assert isinstance(modules, list)
    return [f"{m['name']}: {m.get('exception')}: {m.get('error')}" for m in modules
            if m.get("status") == "failed"]


def test_agent_runs_a_seed_with_bookworm_libraries(installed: Chroot) -> None:
    with PhoneHomeSink() as sink:
        status = _run_agent(installed, USER_DATA, sink)
        forms = sink.posted_forms()
    assert _failed(status) == []
    assert status["state"] == "done", status
    root = installed.root
    assert (root / "etc/bootseed-pkg-test.txt").read_text() == "from the seed"
    assert (root / "root/runcmd-ran").read_text() == "ran\n"
    assert (root / "etc/hostname").read_text().strip() == "pkgtest-x"  # jinja rendered
    assert "a@h" in (root / "home/alice/.ssh/authorized_keys").read_text()
    assert list((root / "etc/ssh").glob("ssh_host_ed25519_key"))  # cryptography 38
    assert forms and forms[0]["instance_id"] == ["iid-pkg-01"]  # requests 2.28


def test_given_host_keys_with_bookworm_cryptography(installed: Chroot, tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "given", "-f",
                    str(key)], check=True, timeout=60)
    private = "".join("    " + line + "\n" for line in key.read_text().splitlines())
    user_data = (USER_DATA + "ssh_keys:\n  ed25519_private: |\n" + private
                 + f"  ed25519_public: {(tmp_path / 'k.pub').read_text().strip()}\n")
    with PhoneHomeSink() as sink:
        status = _run_agent(installed, user_data, sink)
    assert _failed(status) == []
    pub = (installed.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text()
    assert pub.split()[:2] == (tmp_path / "k.pub").read_text().split()[:2]


def test_remove_leaves_no_units_and_no_hook(installed: Chroot) -> None:
    # Last in this module: it removes the packages.
    installed.run("apt-get", "remove", "-y", "-q", "bootseed")
    root = installed.root
    leftovers = [str(p.relative_to(root)) for d in ("lib/systemd", "usr/lib/systemd",
                                                    "etc/systemd", "usr/share/initramfs-tools")
                 for p in (root / d).rglob("*bootseed*")]
    assert leftovers == []
    assert not (root / "usr/bin/bootseed").exists()
    files = installed.initramfs_files()
    assert "scripts/init-premount/bootseed" not in files
    assert "etc/bootseed-early.conf" not in files
    assert not any("bootseed/early" in f for f in files)
