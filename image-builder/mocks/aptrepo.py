"""A real, signed Debian repository for the boot lab, built from .debs.

Two suites in one tree, each signed with its own throwaway OpenPGP key, so a
seed can trust one by an inline ``key`` and the other by ``keyid`` fetched
from the lab keyserver:

=========  ==========================================  =====================
suite      packages                                    signed by
=========  ==========================================  =====================
lab        bootseed-lab-hello 1.0 and 2.0, hello        ``keys["lab"]``
lab-extra  tree                                         ``keys["lab-extra"]``
lab-cm     (optional) real packages with every          ``keys["lab-cm"]``
           dependency a given image lacks
=========  ==========================================  =====================

The optional ``lab-cm`` suite serves configuration-management agents (the
Puppet agent, ansible-core, git) to a guest that has no route to Debian: the
packages and exactly the dependencies the guest's image does not have yet,
worked out by apt against that image's own dpkg status file
(:class:`Closure`) and downloaded once into the cache.

``bootseed-lab-hello`` is built here (``dpkg-deb``) in two versions, so an
image carrying 1.0 can be upgraded to 2.0; ``hello`` and ``tree`` are real
Debian packages fetched once with ``apt-get download`` into the cache. The
indices and the ``Release`` files come from Debian's own tools
(``apt-ftparchive``), signatures from ``gpg`` (``InRelease`` and
``Release.gpg``). The whole tree is cached by a key of its inputs, keys
included, so a run reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TEST_PACKAGE = "bootseed-lab-hello"
TEST_VERSIONS = ("1.0", "2.0")
SUITES: dict[str, tuple[str, ...]] = {
    "lab": (f"{TEST_PACKAGE}_1.0", f"{TEST_PACKAGE}_2.0", "hello"),
    "lab-extra": ("tree",),
}
REAL_PACKAGES = ("hello", "tree")
CLOSURE_SUITE = "lab-cm"
_FORMAT = 1


@dataclass(frozen=True)
class Closure:
    """Real packages for a ``lab-cm`` suite, with what an image needs to install them."""

    packages: tuple[str, ...]
    # The dpkg status file of the image's tree: what the guest already has.
    dpkg_status: Path

    def key(self) -> str:
        digest = hashlib.sha256("\0".join(self.packages).encode())
        digest.update(self.dpkg_status.read_bytes())
        return digest.hexdigest()[:16]


class AptRepoError(Exception):
    """The repository could not be built; the message names the step."""


@dataclass(frozen=True)
class RepoKey:
    fingerprint: str  # 40 hex digits, upper case
    armored: str  # the public key, ASCII-armoured

    @property
    def keyid(self) -> str:
        """The long (16 hex digit) key id, as cloud-config ``keyid`` gives it."""
        return self.fingerprint[-16:]


@dataclass(frozen=True)
class LabRepo:
    root: Path  # serve this directory: dists/ and pool/
    keys: dict[str, RepoKey]  # suite -> the key that signs it

    def test_deb(self, version: str) -> Path:
        return self.root / "pool" / "main" / f"{TEST_PACKAGE}_{version}_all.deb"


def build_lab_repo(cache: Path, closure: Closure | None = None) -> LabRepo:
    """The repository under ``cache/lab-apt-repo``, built now unless already there.

    With ``closure``, it also has the ``lab-cm`` suite (a different cache entry)."""
    debs = _real_debs(cache / "lab-debs")
    closure_debs = (_closure_debs(cache / "lab-cm-debs", closure) if closure is not None
                    else [])
    key_material = hashlib.sha256()
    for deb in [*debs, *closure_debs]:
        key_material.update(deb.name.encode())
    key_material.update(Path(__file__).read_bytes())
    root = cache / "lab-apt-repo" / key_material.hexdigest()[:16]
    stamp = root / "repo.json"
    if stamp.is_file():
        return _load(root, stamp)
    work = Path(tempfile.mkdtemp(prefix="repo-", dir=cache))
    try:
        keys = _make_repo(work, debs, closure_debs)
        (work / "repo.json").write_text(json.dumps(
            {"format": _FORMAT,
             "keys": {s: {"fingerprint": k.fingerprint, "armored": k.armored}
                      for s, k in keys.items()}}))
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(work, root)
        except OSError:  # another run built it meanwhile; theirs is as good
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _load(root, stamp)


def _load(root: Path, stamp: Path) -> LabRepo:
    doc = json.loads(stamp.read_text())
    keys = {suite: RepoKey(k["fingerprint"], k["armored"]) for suite, k in doc["keys"].items()}
    return LabRepo(root, keys)


def _run(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run([os.fspath(a) for a in argv], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AptRepoError(f"{argv[0]}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AptRepoError(f"{' '.join(map(str, argv[:3]))} exited {proc.returncode}: "
                           + " / ".join(tail))
    return proc.stdout


def _real_debs(directory: Path) -> list[Path]:
    """``hello`` and ``tree`` from Debian, downloaded once."""
    directory.mkdir(parents=True, exist_ok=True)
    found = [next(iter(sorted(directory.glob(f"{name}_*.deb"))), None)
             for name in REAL_PACKAGES]
    if all(found):
        return [p for p in found if p is not None]
    try:
        _run(["apt-get", "download", *REAL_PACKAGES], cwd=directory)
    except AptRepoError:
        # A fresh machine may have no package lists yet.
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "download", *REAL_PACKAGES], cwd=directory)
    debs = [next(iter(sorted(directory.glob(f"{name}_*.deb"))), None) for name in REAL_PACKAGES]
    missing = [n for n, p in zip(REAL_PACKAGES, debs, strict=True) if p is None]
    if missing:
        raise AptRepoError(f"apt-get download left no .deb for {', '.join(missing)}")
    return [p for p in debs if p is not None]


def _closure_debs(directory: Path, closure: Closure) -> list[Path]:
    """The closure's .debs, downloaded once per (packages, image status) pair."""
    entry = directory / closure.key()
    done = entry / "complete"
    if done.is_file():
        return sorted(entry.glob("*.deb"))
    staging = Path(tempfile.mkdtemp(prefix="closure-", dir=directory.parent))
    try:
        (staging / "partial").mkdir()
        argv = ["apt-get", "--quiet", "--assume-yes", "--no-install-recommends",
                f"--option=Dir::State::status={closure.dpkg_status}",
                f"--option=Dir::Cache::archives={staging}",
                "--option=Debug::NoLocking=true",
                "install", "--download-only", *closure.packages]
        try:
            _run(argv)
        except AptRepoError:
            _run(["apt-get", "update", "-q"])  # a fresh machine may have no lists yet
            _run(argv)
        shutil.rmtree(staging / "partial")
        (staging / "complete").write_text(" ".join(closure.packages) + "\n")
        directory.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, entry)
        except OSError:  # another run downloaded it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(entry.glob("*.deb"))


def _make_repo(work: Path, real_debs: list[Path],
               closure_debs: list[Path]) -> dict[str, RepoKey]:
    pool = work / "pool" / "main"
    pool.mkdir(parents=True)
    for version in TEST_VERSIONS:
        _build_test_package(work / "src", version, pool)
    for deb in [*real_debs, *closure_debs]:
        shutil.copy2(deb, pool / deb.name)
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700)
    keys: dict[str, RepoKey] = {}
    suites = dict(SUITES)
    if closure_debs:
        suites[CLOSURE_SUITE] = tuple(deb.name.split("_", 1)[0] for deb in closure_debs)
    for suite, members in suites.items():
        suite_pool = work / "pool" / suite
        suite_pool.mkdir()
        for member in members:
            for deb in pool.glob(f"{member}_*.deb"):
                os.link(deb, suite_pool / deb.name)
        keys[suite] = _make_key(gnupg, suite)
        _index_suite(work, suite)
        _sign_suite(work, gnupg, suite, keys[suite])
        shutil.rmtree(suite_pool)
    shutil.rmtree(gnupg)
    shutil.rmtree(work / "src")
    return keys


def _build_test_package(src: Path, version: str, pool: Path) -> None:
    tree = src / version
    (tree / "DEBIAN").mkdir(parents=True)
    share = tree / "usr" / "share" / TEST_PACKAGE
    share.mkdir(parents=True)
    (share / "version").write_text(f"{version}\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {TEST_PACKAGE}\n"
        f"Version: {version}\n"
        "Architecture: all\n"
        "Maintainer: bootseed lab <lab@bootseed.invalid>\n"
        "Section: misc\n"
        "Priority: optional\n"
        "Description: bootseed boot lab test package\n"
        " Installs /usr/share/bootseed-lab-hello/version holding its own version,\n"
        " so a boot test sees which version apt installed.\n")
    _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree,
          pool / f"{TEST_PACKAGE}_{version}_all.deb"])


def _make_key(gnupg: Path, suite: str) -> RepoKey:
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    uid = f"bootseed lab repository {suite} <{suite}@bootseed.invalid>"
    _run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
          "--quick-gen-key", uid, "ed25519", "sign", "never"], env=env)
    listing = _run(["gpg", "--batch", "--with-colons", "--list-keys", uid], env=env)
    fingerprint = next(line.split(":")[9] for line in listing.splitlines()
                       if line.startswith("fpr:"))
    armored = _run(["gpg", "--batch", "--armor", "--export", fingerprint], env=env)
    return RepoKey(fingerprint.upper(), armored)


def _index_suite(work: Path, suite: str) -> None:
    binary = work / "dists" / suite / "main" / "binary-amd64"
    binary.mkdir(parents=True)
    packages = _run(["apt-ftparchive", "packages", f"pool/{suite}"], cwd=work)
    # Point the index at the shared pool, where the files stay.
    packages = packages.replace(f"Filename: pool/{suite}/", "Filename: pool/main/")
    (binary / "Packages").write_text(packages)
    _run(["gzip", "-9kn", binary / "Packages"])
    release = _run([
        "apt-ftparchive",
        "-o", "APT::FTPArchive::Release::Origin=bootseed-lab",
        "-o", f"APT::FTPArchive::Release::Suite={suite}",
        "-o", f"APT::FTPArchive::Release::Codename={suite}",
        "-o", "APT::FTPArchive::Release::Components=main",
        "-o", "APT::FTPArchive::Release::Architectures=amd64 all",
        "release", f"dists/{suite}"], cwd=work)
    (work / "dists" / suite / "Release").write_text(release)


def _sign_suite(work: Path, gnupg: Path, suite: str, key: RepoKey) -> None:
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    dist = work / "dists" / suite
    common = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "",
              "--local-user", key.fingerprint]
    _run([*common, "--clearsign", "--output", dist / "InRelease", dist / "Release"], env=env)
    _run([*common, "--armor", "--detach-sign", "--output", dist / "Release.gpg",
          dist / "Release"], env=env)
