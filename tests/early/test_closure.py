"""The build-time module closure: the import scan's rules, and the proof that matters —
the early stage runs its real paths in a chroot that holds nothing but the closure, the
interpreter and their shared libraries (what the initramfs hook installs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootseed.early import closure

from tests.early.test_net_lab import SERVER_IP, NetnsPair, needs_netns, netns_lab
from testsupport.initramfstree import copy_with_libraries, stage_path_tree

DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PYROUTE2 = Path("/usr/lib/python3/dist-packages/pyroute2")

SAMPLE = '''
"""doc"""
import json
from typing import TYPE_CHECKING
from . import sibling
from .. import uncle
try:
    import fastjson
except ImportError:
    import slowjson
if TYPE_CHECKING:
    import only_for_mypy
class K:
    import in_class_body
def f():
    import lazy_one
    from pkg.sub import name
if __name__ == "__main__":
    import only_as_script
'''


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A path entry holding bootseed/early and the bootseed/contract it imports (the
    editable install hides them from finders)."""
    return stage_path_tree(tmp_path_factory.mktemp("pathtree"))


def test_scan_marks_eager_lazy_optional_and_skips_dead_branches(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(SAMPLE)
    refs = {r.name: r for r in closure.scan_imports(source, "a.b.mod", is_package=False)}
    assert refs["json"].eager and not refs["json"].optional
    assert refs["a.b"].fromlist == ("sibling",)
    assert refs["a"].fromlist == ("uncle",)
    assert refs["fastjson"].eager and refs["fastjson"].optional
    # An except clause is a fallback: not followed unless the importer is ours.
    assert not refs["slowjson"].eager and refs["slowjson"].optional
    assert refs["in_class_body"].eager
    assert not refs["lazy_one"].eager and not refs["pkg.sub"].eager
    assert "only_for_mypy" not in refs and "only_as_script" not in refs


def test_closure_of_the_early_stage_without_optional_packages(tree: Path) -> None:
    result = closure.compute(set(), [str(tree), *sys.path])
    names = set(result.modules)
    assert {"bootseed.early.premount", "bootseed.early.__main__", "bootseed.early.net",
            "bootseed.early.rootswitch", "bootseed.contract.cli",
            "http.client", "json", "encodings.utf_8"} <= names
    # Third-party packages are opt-in; the standard library's function-level helpers
    # (pydoc, unittest via doctest, ...) are not dragged in.
    assert "pyroute2" in result.left_out and "pyroute2.iproute.linux" not in names
    assert not {"pydoc", "unittest", "tkinter", "doctest"} & names
    assert all(m.area != "third-party" for m in result.modules.values())
    assert not result.unresolved.keys() - {"_winapi", "msvcrt", "nt", "winreg", "_overlapped"}


def test_closure_with_pyroute2_skips_its_package_init(tree: Path) -> None:
    result = closure.compute({"pyroute2"}, [str(tree), *sys.path])
    assert result.modules["pyroute2"].kind == "namespace"
    assert {"pyroute2.iproute.linux", "bootseed.early.dhcp4"} <= set(result.modules)
    # What only pyroute2/__init__ pulls in stays out, and so does pyroute2's DHCP
    # client: the exchange is bootseed.early.dhcp4, pyroute2 only the netlink layer.
    assert "pyroute2.ndb.main" not in result.modules
    assert not [name for name in result.modules if name.startswith("pyroute2.dhcp")]


@pytest.mark.skipif(not DEBIAN_PYROUTE2.is_dir(), reason="Debian's python3-pyroute2 not installed")
def test_cli_with_debian_python_takes_debians_pyroute2(tree: Path) -> None:
    doc = json.loads(debian_closure_cli(tree, "list", "--json"))
    pyroute2 = {n: m for n, m in doc["modules"].items() if n.startswith("pyroute2.")}
    assert "pyroute2.iproute.linux" in pyroute2
    assert all(m["origin"].startswith(f"{DEBIAN_PYROUTE2}/") for m in pyroute2.values())
    assert doc["modules"]["pyroute2"]["kind"] == "namespace"


def test_cli_lists_json(tree: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bootseed.early.closure", "list", "--json",
                          "--path", str(tree)], capture_output=True, text=True, check=True,
                         timeout=120)
    doc = json.loads(out.stdout)
    assert doc["modules"]["bootseed.early.premount"]["area"] == "ours"
    assert doc["summary"]["files"] > 50


def test_cli_install_needs_an_existing_dest(tmp_path: Path, tree: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bootseed.early.closure", "install", "--dest",
                          str(tmp_path / "missing"), "--path", str(tree)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1 and "not a directory" in out.stderr


# --- the closure in a chroot -----------------------------------------------------------


@pytest.fixture(scope="module")
def chroot_root(tmp_path_factory: pytest.TempPathFactory, tree: Path) -> Path:
    root = tmp_path_factory.mktemp("initramfs-like")
    result = closure.compute({"pyroute2"}, [str(tree), *sys.path])
    extensions = closure.install(result, root, optimize=2)
    interpreter = str(Path(sys.executable).resolve())
    copy_with_libraries(interpreter, root, "/usr/bin/python3")
    for src, target in extensions:
        copy_with_libraries(src, root, target)
    for name in ("proc", "sys", "dev", "run", "tmp", "etc"):
        (root / name).mkdir(exist_ok=True)
    return root


def debian_closure_cli(tree: Path, *args: str) -> str:
    """The closure CLI under Debian's interpreter, isolated (-I) as the initramfs hook
    runs it, so it finds Debian's pyroute2 and not the venv's."""
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from bootseed.early.closure import main; sys.exit(main(sys.argv[1:]))")
    out = subprocess.run([DEBIAN_PYTHON, "-I", "-c", code, str(tree), *args, "--with",
                          "pyroute2", "--path", str(tree)], capture_output=True, text=True,
                         check=True, timeout=300)
    return out.stdout


@pytest.fixture(scope="module")
def debian_chroot_root(tmp_path_factory: pytest.TempPathFactory, tree: Path) -> Path:
    """The same chroot, its closure computed by Debian's python3 with Debian's
    python3-pyroute2 0.7.2 (what the package's initramfs holds)."""
    if not DEBIAN_PYROUTE2.is_dir():
        pytest.skip("Debian's python3-pyroute2 not installed")
    root = tmp_path_factory.mktemp("initramfs-like-debian")
    doc = json.loads(debian_closure_cli(tree, "install", "--json", "--optimize", "2",
                                        "--dest", str(root)))
    copy_with_libraries(str(Path(DEBIAN_PYTHON).resolve()), root, "/usr/bin/python3")
    for extension in doc["extensions"]:
        copy_with_libraries(extension["source"], root, extension["target"])
    for name in ("proc", "sys", "dev", "run", "tmp", "etc"):
        (root / name).mkdir(exist_ok=True)
    stdlib = next((root / "usr/lib").glob("python3.*"))
    assert (stdlib / "pyroute2/iproute/linux.pyc").exists()
    assert not (stdlib / "pyroute2/__init__.pyc").exists()
    return root


@pytest.fixture
def lab() -> Iterator[NetnsPair]:
    with netns_lab() as pair:
        yield pair


def chroot_premount(lab: NetnsPair, root: Path, *args: str) -> tuple[dict[str, object], str]:
    script = ('mount -t proc proc "$0/proc" && mount -t sysfs sysfs "$0/sys" && '
              'exec chroot "$0" /usr/bin/python3 -I -S -m bootseed.early premount "$@"')
    result = lab.run_client(["sh", "-c", script, str(root), "--out", "/run/bootseed",
                             "--dmi-dir", "/nonexistent", "--no-disc-scan",
                             "--carrier-timeout", "3", "--dhcp-timeout", "5", *args])
    assert result.returncode == 0, result.stderr
    doc = json.loads((root / "run/bootseed/seed.json").read_text())
    shutil.rmtree(root / "run/bootseed")
    return doc, result.stderr


@needs_netns
@pytest.mark.root
def test_closure_alone_runs_the_no_seed_path(lab: NetnsPair, chroot_root: Path) -> None:
    doc, stderr = chroot_premount(lab, chroot_root, "--cmdline", "root=LABEL=x quiet")
    assert doc["source"] == "none" and doc["problems"] == [], stderr
    assert "bootseed-early: no seed" in stderr


@needs_netns
@pytest.mark.root
@pytest.mark.parametrize("root_fixture", ["chroot_root", "debian_chroot_root"])
def test_closure_alone_fetches_ec2_over_pyroute2_dhcp(lab: NetnsPair, root_fixture: str,
                                                      request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    chroot_root: Path = request.getfixturevalue(root_fixture)
    lab.start_dhcp()
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "user-data").write_bytes(b"#cloud-config\n{}\n")
    (seed / "meta-data").write_text(json.dumps({"instance-id": "i-chroot"}))
    imds = lab.serve("imds:v2-required", seed, 8080)
    doc, stderr = chroot_premount(lab, chroot_root, "--cmdline", "bootseed.ds=ec2",
                                  "--ec2-endpoint", f"http://{SERVER_IP}:8080")
    log = imds.stop()
    assert doc["source"] == "ec2" and doc["instance_id"] == "i-chroot", stderr
    action = next(a for a in doc["actions"] if a["action"] == "early-stage")  # type: ignore
    assert action["network"]["backend"] == "pyroute2"
    assert any(r["method"] == "PUT" for r in log)


def test_codecs_named_in_code_are_found_but_not_codec_tables(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('import json\n'
                      'def f(b):\n    open("x", encoding="ascii")\n'
                      '    return b.decode("utf-8-sig")\n'
                      'TABLE = {"big5": "x", "koi8_r": "y"}\n')
    assert closure.codec_modules(source) == ["encodings.ascii", "encodings.utf_8_sig"]
