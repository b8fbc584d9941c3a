from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.late.modules import ansible
from bootseed.late.target import TargetRoot

from testsupport.chroot import make_shell_root
from testsupport.targetfs import make_ctx, make_target

LOG = "/tmp/ansible-calls"


def test_pull_options_as_ansible_pull_takes_them() -> None:
    assert ansible.pull_command({
        "url": "https://git.example.org/site.git", "playbook_name": "site.yml",
        "checkout": "main", "accept_host_key": True, "full": True, "clean": False,
        "timeout": 30}) == [
        "ansible-pull", "--url=https://git.example.org/site.git", "--checkout=main",
        "--accept-host-key", "--full", "--timeout=30", "site.yml"]


def test_controller_playbooks_and_run_user() -> None:
    assert ansible.playbook_command({"playbook_name": "db.yml", "playbook_dir": "/srv/pb/",
                                     "inventory": "hosts", "check": True}) == [
        "ansible-playbook", "--inventory=hosts", "--check", "/srv/pb/db.yml"]
    assert ansible.as_user("deploy", ["ansible-pull", "--url=u v", "x.yml"]) == [
        "runuser", "--login", "deploy", "--command", "ansible-pull '--url=u v' x.yml"]
    assert ansible.as_user("root", ["ansible-pull"]) == ["ansible-pull"]


def _root_with_ansible(tmp_path: Path, pull_exit: int) -> TargetRoot:
    make_shell_root(tmp_path)
    target = make_target(tmp_path)
    target.write("/usr/bin/dpkg-query", "#!/bin/sh\necho 'install ok installed'\n", mode=0o755)
    for tool in ("ansible-galaxy", "ansible-pull"):
        code = pull_exit if tool == "ansible-pull" else 0
        target.write(f"/usr/bin/{tool}", f"#!/bin/sh\necho \"{tool} $*\" >> {LOG}\n"
                     f"echo 'fatal: repository not found'\nexit {code}\n", mode=0o755)
    return target


def test_galaxy_then_pull_in_order(tmp_path: Path) -> None:
    target = _root_with_ansible(tmp_path, 0)
    ctx = make_ctx(target, {"ansible": {
        "package_name": "ansible-core",
        "galaxy": {"actions": [["ansible-galaxy", "collection", "install", "community.general"]]},
        "pull": {"url": "http://git.lab/pb.git", "playbook_name": "site.yml"}}})
    ansible.MODULE.handle(ctx)
    assert target.read_text(LOG).splitlines() == [
        "ansible-galaxy collection install community.general",
        "ansible-pull --url=http://git.lab/pb.git site.yml"]


def test_a_failing_pull_fails_the_module_with_its_words(tmp_path: Path) -> None:
    target = _root_with_ansible(tmp_path, 1)
    ctx = make_ctx(target, {"ansible": {"pull": {"url": "http://git.lab/none.git",
                                                 "playbook_name": "site.yml"}}})
    with pytest.raises(RuntimeError, match=r"ansible.pull: .* exited 1:\nfatal: repository"):
        ansible.MODULE.handle(ctx)


def test_pip_is_refused_by_name_and_a_missing_tool_is_named(tmp_path: Path) -> None:
    make_shell_root(tmp_path)
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"ansible": {"install_method": "pip", "pull": {
        "url": "http://git.lab/pb.git", "playbook_name": "site.yml"}}})
    with pytest.raises(RuntimeError, match=r"ansible\.pull: ansible-pull is not installed"):
        ansible.MODULE.handle(ctx)
    assert [p.where for p in ctx.problems] == ["ansible.install_method"]
