"""The one command-line pattern: verbs, one-line errors with their exit status, lazy loading."""

from __future__ import annotations

import argparse

import pytest
from bootseed.contract.cli import CliError, Program, Verb, build_parser, run_program


def _program(loaded: list[str]) -> Program:
    def add_greet_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("who")
        parser.add_argument("--fail", type=int, default=0)

    def greet(args: argparse.Namespace) -> int:
        if args.fail:
            raise CliError(f"cannot greet {args.who}", exit_code=args.fail)
        print(f"hello {args.who}")
        return 0

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    def load(verb: Verb) -> Verb:
        loaded.append(verb.name)
        return verb

    greet_verb = Verb("greet", "say hello", add_greet_arguments, greet)
    stop_verb = Verb("stop", "be interrupted", lambda parser: None, interrupted)
    return Program(prog="demo", description="a demo", version="9.9",
                   verbs={"greet": lambda: load(greet_verb), "stop": lambda: load(stop_verb)})


def test_runs_only_the_requested_verb(capsys: pytest.CaptureFixture[str]) -> None:
    loaded: list[str] = []
    assert run_program(_program(loaded), ["greet", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert loaded == ["greet"]


def test_cli_error_is_one_line_with_its_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_program(_program([]), ["greet", "x", "--fail", "3"]) == 3
    assert capsys.readouterr().err == "demo greet: cannot greet x\n"
    assert run_program(_program([]), ["stop"]) == 130
    assert capsys.readouterr().err == "demo stop: interrupted\n"


def test_help_version_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, status in ((["--help"], 0), (["greet", "--help"], 0), (["--version"], 0),
                         ([], 2), (["greet"], 2), (["nope"], 2)):
        with pytest.raises(SystemExit) as exc:
            run_program(_program([]), argv)
        assert exc.value.code == status, argv
    assert "demo 9.9" in capsys.readouterr().out
    loaded: list[str] = []
    assert "greet" in build_parser(_program(loaded)).format_help()
    assert loaded == ["greet", "stop"]
