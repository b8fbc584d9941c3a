from __future__ import annotations

from pathlib import Path

import pytest
from bootseed.contract.problems import Level, Problem
from bootseed.late.apt import aptget
from bootseed.late.modules import apt_pipelining, package_update_upgrade_install
from bootseed.late.modules.package_update_upgrade_install import requested_packages

from testsupport.targetfs import make_ctx, make_target


def test_every_package_form() -> None:
    problems: list[Problem] = []
    wanted = requested_packages(
        ["vim", "curl=7.88.1-10", ["jq", "1.6-2.1"], ["htop"], {"apt": ["git", ["tmux", "3.3"]]},
         {"snap": ["lxd"]}, 42, "bad name", "-o=evil"], problems)
    assert wanted == ["vim", "curl=7.88.1-10", "jq=1.6-2.1", "htop", "git", "tmux=3.3"]
    assert [p.where for p in problems] == ["packages[5].snap", "packages[6]", "packages",
                                           "packages"]
    assert "not supported on this system" in problems[0].message


def test_packages_not_a_list() -> None:
    problems: list[Problem] = []
    assert requested_packages("vim", problems) == []
    assert problems[0].where == "packages"


APT_OUTPUT = """Reading package lists...
Building dependency tree...
E: Unable to locate package nosuch
E: Version '9.9' for 'hello' was not found
E: Package 'virtual-thing' has no installation candidate
"""


def test_unavailable_requests_are_read_from_apts_own_words() -> None:
    wanted = ["nosuch", "hello=9.9", "virtual-thing", "tree"]
    assert aptget._unavailable(APT_OUTPUT, wanted) == ["nosuch", "hello=9.9", "virtual-thing"]


def test_credentials_never_reach_the_status() -> None:
    text = "Err:1 http://user:s3cret@proxy.example:3128/debian lab InRelease\n"
    assert "s3cret" not in aptget.redact(text)
    assert "http://<redacted>@proxy.example:3128/debian" in aptget.redact(text)


def test_deprecated_aliases_are_honoured_with_a_note(tmp_path: Path) -> None:
    target = make_target(tmp_path / "root")
    ctx = make_ctx(target, {"apt_reboot_if_required": True})
    # Nothing to install and no update asked: the module only reads its flags.
    package_update_upgrade_install.handle(ctx)
    assert ctx.problems == [Problem("apt_reboot_if_required",
                                    "deprecated: use package_reboot_if_required instead",
                                    Level.NOTE)]


@pytest.mark.parametrize(("value", "depth"), [(False, 0), ("none", 0), (3, 3), ("os", None),
                                              ("unchanged", None), (True, None)])
def test_pipelining_values(value: object, depth: int | None, tmp_path: Path) -> None:
    assert apt_pipelining.depth_for(value) == depth
    target = make_target(tmp_path / "root")
    apt_pipelining.handle(make_ctx(target, {"apt_pipelining": value}))
    conf = target.path(apt_pipelining.PIPELINING_FILE)
    if depth is None:
        assert not conf.exists()
    else:
        assert conf.read_text().endswith(f'Acquire::http::Pipeline-Depth "{depth}";\n')


def test_pipelining_bad_value_is_reported(tmp_path: Path) -> None:
    ctx = make_ctx(make_target(tmp_path / "root"), {"apt_pipelining": "fast"})
    apt_pipelining.handle(ctx)
    assert [p.where for p in ctx.problems] == ["apt_pipelining"]


def test_removing_apt_files_never_follows_a_symlink_out_of_the_target(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "apt.conf.d").mkdir(parents=True)
    victim = outside / "apt.conf.d" / "90cloud-init-pipelining"
    victim.write_text("keep me\n")
    target = make_target(tmp_path / "root")
    target.path("/etc/apt").symlink_to(outside)  # /etc/apt -> a directory outside
    apt_pipelining.handle(make_ctx(target, {"apt_pipelining": "os"}))
    assert victim.read_text() == "keep me\n"
