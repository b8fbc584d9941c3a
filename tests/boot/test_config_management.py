"""End-to-end: an instance handed to Puppet (with a CSR token) and to ansible-pull.

The host side runs a real Puppet server (Debian's ``puppetserver``, private to
this run, started once) whose policy-based autosigning signs a CSR only when
its challengePassword is the fleet's token, and a git repository served over
git's dumb HTTP protocol holding a playbook. Two guests boot at once from the
lab image; both install the Puppet agent (and the good one ansible-core and
git) from the lab repository's ``lab-cm`` suite:

- the good seed carries the right token: the agent gets its certificate,
  applies the catalog (a marker file naming its certname and the
  ``pp_role`` extension the CSR asked for), and ``ansible-pull`` applies the
  playbook (another marker);
- the other seed carries a wrong token: the server signs nothing, the status
  names the refusal, and the rest of the seed still applies.

Neither token ever reaches the console, bootseed's log or status, or a
world-readable file in the guest.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import yaml
from bootseed.image_builder import labnet
from bootseed.image_builder.basetree import ensure_base_tree
from bootseed.image_builder.cache import cache_root
from bootseed.image_builder.lab import BootLab, BootOptions, BootResult
from bootseed.image_builder.mocks.aptrepo import CLOSURE_SUITE, Closure, LabRepo, build_lab_repo
from bootseed.image_builder.mocks.puppetserver import PuppetServer, available
from bootseed.image_builder.mocks.static import StaticServer

from testsupport.labimage import LAB_BASE

pytestmark = pytest.mark.boot

TIMEOUT = 1500.0
AGENTS = ("puppet-agent", "ansible-core", "git")
GOOD_TOKEN = "fleet-token-7f3a9c2e51"
WRONG_TOKEN = "stale-token-0b8d44e1c6"
PUPPET_MARKER = "/var/lib/bootseed-lab/puppet-marker"
ANSIBLE_MARKER = "/var/lib/bootseed-lab/ansible-marker"
OTHER_MARKER = "/var/lib/bootseed-lab/other-modules-ran"
CHECKS = "/var/lib/bootseed-lab/secret-checks"
SITE_PP = f"""node default {{
  file {{ '/var/lib/bootseed-lab': ensure => directory }}
  file {{ '{PUPPET_MARKER}':
    content => "certname=${{trusted['certname']}} role=${{trusted['extensions']['pp_role']}}\\n",
  }}
}}
"""
PLAYBOOK = f"""- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: leave a marker
      ansible.builtin.copy:
        dest: {ANSIBLE_MARKER}
        content: "applied by ansible-pull\\n"
"""


def _secret_checks(token: str) -> str:
    """A final-stage script that looks for ``token`` without holding it in one piece."""
    half = len(token) // 2
    return f"""#!/bin/sh
a='{token[:half]}'; b='{token[half:]}'
mkdir -p /var/lib/bootseed-lab
{{
  echo "csr-mode $(stat -c %a /etc/puppet/csr_attributes.yaml 2>/dev/null)"
  echo "log-hits $(grep -cF "$a$b" /var/log/bootseed.log 2>/dev/null)"
  echo "status-hits $(bootseed status --json 2>/dev/null | grep -cF "$a$b")"
  q=$(runuser -u nobody -- bootseed query 2>&1); echo "query-rc $?"
  echo "query-hits $(printf '%s' "$q" | grep -cF "$a$b")"
  echo "redacted-hits $(bootseed query --redacted 2>&1 | grep -cF "$a$b")"
  echo "journal-hits $(journalctl -b --no-pager 2>/dev/null | grep -cF "$a$b")"
  echo "world-readable $(find /etc /var /run /home /tmp -xdev -type f -perm -o+r \\
        -size -4M 2>/dev/null | xargs grep -lF "$a$b" 2>/dev/null | tr '\\n' ' ')"
}} > {CHECKS}
"""


@pytest.fixture(scope="module")
def cm_repo() -> LabRepo:
    """The lab repository plus the agents and what the lab image lacks to install them."""
    base = ensure_base_tree(LAB_BASE, cache_root())
    closure = Closure(AGENTS, base.root / "var" / "lib" / "dpkg" / "status")
    return build_lab_repo(cache_root(), closure)


@pytest.fixture(scope="module")
def puppet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PuppetServer]:
    why = available()
    if why:
        pytest.fail(f"the Puppet server cannot run: {why} (scripts/bootstrap installs it)")
    server = PuppetServer(tmp_path_factory.mktemp("puppetserver"), token=GOOD_TOKEN,
                          site_pp=SITE_PP)
    # Launched, not awaited: the JVM starts while the guests boot (each guest waits for
    # the server before its agent runs, see _config).
    server.launch()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticServer]:
    """A bare repository with the playbook, served over git's dumb HTTP protocol."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    work.mkdir()
    (work / "site.yml").write_text(PLAYBOOK)
    env_args = ["-c", "user.name=lab", "-c", "user.email=lab@bootseed.invalid"]
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "site.yml"],
                 ["git", *env_args, "commit", "-q", "-m", "playbook"]):
        subprocess.run(argv, cwd=work, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "playbooks.git")],
                   check=True)
    subprocess.run(["git", "update-server-info"], cwd=root / "playbooks.git", check=True)
    server = StaticServer(root).start()
    yield server
    server.stop()


def _config(repo: LabRepo, ca_pem: str, token: str, *, with_ansible: bool) -> dict:
    config: dict = {
        "bootcmd": [f"grep -q ' puppet$' /etc/hosts || "
                    f"echo '{labnet.PUPPET_ADDR} puppet.lab puppet' >> /etc/hosts"],
        "apt": {
            "sources_list": "# the lab has no distribution mirror\n",
            "sources": {"lab-cm": {
                "source": f"deb http://{labnet.REPO_ADDR}/ {CLOSURE_SUITE} main",
                "key": repo.keys[CLOSURE_SUITE].armored}},
        },
        "puppet": {
            "package_name": "puppet-agent",
            "conf": {"agent": {"server": "puppet", "certname": "%i.lab",
                               "masterport": labnet.PUPPET_PORT},
                     "ca_cert": ca_pem},
            "csr_attributes": {
                "custom_attributes": {"1.2.840.113549.1.9.7": token},
                "extension_requests": {"pp_role": "web"},
            },
            "exec": True,
            "start_service": False,
        },
        "runcmd": [
            f"mkdir -p /var/lib/bootseed-lab && touch {OTHER_MARKER}",
            # As a fleet's first-boot script would: wait (bounded) for the server that
            # is still starting, so the final stage's agent finds it answering.
            f"for i in $(seq 120); do curl -skf https://puppet:{labnet.PUPPET_PORT}"
            "/status/v1/simple && break; sleep 5; done",
        ],
    }
    if with_ansible:
        config["packages"] = ["git"]
        config["ansible"] = {
            "package_name": "ansible-core",
            "pull": {"url": f"http://{labnet.GIT_ADDR}/playbooks.git",
                     "playbook_name": "site.yml", "full": True, "checkout": "main"},
        }
    return config


def _seed_dir(tmp_path: Path, name: str, config: dict, token: str) -> Path:
    seed = tmp_path / name
    seed.mkdir()
    (seed / "meta-data").write_text(f"instance-id: iid-{name}\nlocal-hostname: {name}\n")
    message = MIMEMultipart()
    message.attach(MIMEText("#cloud-config\n" + yaml.safe_dump(config), "cloud-config"))
    message.attach(MIMEText(_secret_checks(token), "x-shellscript"))
    (seed / "user-data").write_text(message.as_string())
    return seed


def _diagnose(result: BootResult) -> str:
    return f"{result.summary()}\n--- console tail ---\n{result.console_text()[-4000:]}"


def _checks(result: BootResult) -> dict[str, str]:
    assert result.report is not None, _diagnose(result)
    text = (result.report.file_bytes(CHECKS) or b"").decode()
    pairs = (line.partition(" ") for line in text.splitlines())
    return {key: value for key, _, value in pairs}


def test_puppet_token_and_ansible_pull_hand_the_instance_over(
    lab_image: Path, cm_repo: LabRepo, puppet_server: PuppetServer,
    git_server: StaticServer, tmp_path: Path,
) -> None:
    ca_pem = puppet_server.ca_cert.read_text()
    forwards = [
        labnet.GuestForward(labnet.PUPPET_ADDR, labnet.PUPPET_PORT, puppet_server.port),
        labnet.GuestForward(labnet.GIT_ADDR, labnet.HTTP_PORT,
                            int(git_server.server_address[1])),
    ]
    keys = {k.fingerprint: k.armored for k in cm_repo.keys.values()}
    runs = []
    for name, token, with_ansible in (("cm-good", GOOD_TOKEN, True),
                                      ("cm-wrong", WRONG_TOKEN, False)):
        seed = _seed_dir(tmp_path, name, _config(cm_repo, ca_pem, token,
                                                 with_ansible=with_ansible), token)
        files = [PUPPET_MARKER, ANSIBLE_MARKER, OTHER_MARKER, CHECKS]
        runs.append((BootLab(lab_image, tmp_path / f"boots-{name}"),
                     BootOptions(nocloud_dir=seed, apt_repo=cm_repo.root, apt_keys=keys,
                                 forwards=forwards, report_files=files, timeout=TIMEOUT,
                                 status_timeout=1200)))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        good, wrong = pool.map(lambda run: run[0].boot(run[1]), runs)
    puppet_server.wait_ready()
    print(f"puppetserver answered {puppet_server.startup_seconds:.0f}s after its launch")
    print(f"config-management boots: {time.monotonic() - started:.0f}s wall "
          f"(good {good.seconds:.0f}s, wrong token {wrong.seconds:.0f}s)")

    # -- the right token: certificate, catalog, playbook ----------------------------
    report = good.report
    assert report is not None and good.ok, _diagnose(good)
    assert report.state == "done" and not report.module_errors, _diagnose(good)
    assert report.file_bytes(PUPPET_MARKER) == b"certname=iid-cm-good.lab role=web\n", \
        _diagnose(good)
    assert report.file_bytes(ANSIBLE_MARKER) == b"applied by ansible-pull\n", _diagnose(good)
    assert puppet_server.signed() == ["iid-cm-good.lab"], puppet_server.tail()
    git_paths = [r.path for r in git_server.requests]
    assert any("/playbooks.git/info/refs" in p for p in git_paths), git_paths

    # -- the wrong token: no certificate, said so, the rest applied ------------------
    report = wrong.report
    assert report is not None and wrong.ok, _diagnose(wrong)
    assert report.file_bytes(PUPPET_MARKER) is None
    refused = [p for p in report.problems if str(p.get("where", "")).endswith("puppet.exec")]
    assert refused and "did not sign" in refused[0]["message"], report.problems
    assert report.file_bytes(OTHER_MARKER) is not None, _diagnose(wrong)

    # -- the tokens stay secret ---------------------------------------------------
    for result, token in ((good, GOOD_TOKEN), (wrong, WRONG_TOKEN)):
        checks = _checks(result)
        assert checks.get("csr-mode") == "600", checks
        assert checks.get("query-rc") == "0", checks
        for key in ("log-hits", "status-hits", "query-hits", "redacted-hits", "journal-hits"):
            assert checks.get(key) == "0", (key, checks)
        assert checks.get("world-readable", "").strip() == "", checks
        assert token not in result.console_text()
    shutil.rmtree(tmp_path / "boots-cm-good", ignore_errors=True)
