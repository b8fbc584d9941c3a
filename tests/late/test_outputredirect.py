"""``output``: the agent's own stdout/stderr per stage, into files and pipes in the target,
and back where they were at the end of the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bootseed.late.modules.base import Frequency, ModuleContext, ModuleSpec, Stage
from bootseed.late.outputredirect import OutputSpecError, StageOutput, stage_output

from testsupport.chroot import make_shell_root
from testsupport.runenv import Agent, plant_seed
from testsupport.targetfs import make_target


def _printer(stage: Stage) -> ModuleSpec:
    def handle(ctx: ModuleContext) -> None:
        os.write(1, f"out from {stage}\n".encode())
        os.write(2, f"err from {stage}\n".encode())

    return ModuleSpec(f"printer_{stage}", stage, order=990, frequency=Frequency.PER_BOOT,
                      schema={"properties": {}}, handle=handle)


PRINTERS = tuple(_printer(stage) for stage in Stage)


def test_stage_forms_like_cloud_init() -> None:
    cfg = {"output": {"all": ">> /var/log/all.log", "init": ["> /i.log", "&1"],
                      "final": {"output": "| tee -a /f.log", "error": ">> /e.log"}}}
    assert stage_output(cfg, "init") == StageOutput("> /i.log", "> /i.log")
    assert stage_output(cfg, "config") == StageOutput(">> /var/log/all.log",
                                                      ">> /var/log/all.log")
    assert stage_output(cfg, "final") == StageOutput("| tee -a /f.log", ">> /e.log")
    assert stage_output({}, "init") is None
    assert stage_output({"output": {"init": [">> /only-out.log"]}}, "init") == StageOutput(
        ">> /only-out.log", ">> /only-out.log")


@pytest.mark.parametrize("spec", ["x", {"all": "relative.log"}, {"all": 5},
                                  {"init": ["a", "b", "c"]}, {"all": ">>"}])
def test_bad_forms_are_refused(spec: object) -> None:
    with pytest.raises(OutputSpecError):
        stage_output({"output": spec}, "init")


def test_each_stage_goes_where_output_says_and_comes_back(tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]
                                                          ) -> None:
    target = make_shell_root(make_target(tmp_path / "root").root)
    plant_seed(target.root, """#cloud-config
output:
  all: ">> /var/log/all.log"
  config: [">> /var/log/config-out.log", "> /var/log/config-err.log"]
  final: "| while read line; do echo \\"piped: $line\\" >> /piped.log; done"
""")
    run = Agent(target.root, extra=PRINTERS).run()
    assert run.status.state == "done", (run.status.problems, run.log)
    os.write(1, b"after the run\n")
    assert target.read_text("/var/log/all.log") == "out from init\nerr from init\n"
    assert target.read_text("/var/log/config-out.log") == "out from config\n"
    assert target.read_text("/var/log/config-err.log") == "err from config\n"
    assert sorted(target.read_text("/piped.log").splitlines()) == [
        "piped: err from final", "piped: out from final"]
    assert oct(os.stat(target.path("/var/log/all.log")).st_mode & 0o777) == "0o640"
    assert "after the run" in capfd.readouterr().out


def test_a_bad_output_value_is_a_problem_and_nothing_moves(tmp_path: Path) -> None:
    target = make_shell_root(make_target(tmp_path / "root").root)
    plant_seed(target.root, "#cloud-config\noutput: {all: '>> relative'}\n")
    run = Agent(target.root, extra=PRINTERS).run()
    assert any(p.where == "output" for p in run.status.problems), run.status.problems
