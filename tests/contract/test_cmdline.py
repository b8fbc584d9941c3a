"""The one kernel command line parser (contract/cmdline.py) and the rule that it is the only one."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.contract.cmdline import (
    OFF_WORDS,
    ON_WORDS,
    SeedParams,
    format_param,
    parse_switch,
    split_params,
)
from bootseed.contract.cmdline import parse as parse_kernel
from bootseed.contract.problems import Problem

REPO = Path(__file__).resolve().parents[2]
PRODUCT_DIRS = ("contract", "early", "late", "image-builder", "grub")
THE_PARSER = REPO / "contract" / "cmdline.py"


def parse(text: str) -> SeedParams:
    """The seed group with its problems, as the old seed-only parser returned it."""
    return parse_kernel(text).seed


def test_split_respects_quotes_and_stops_at_double_dash():
    params = split_params('ro quiet  a="b c" x= flag -- init=arg ds=ec2\n')
    assert params == [("ro", None), ("quiet", None), ("a", "b c"), ("x", ""), ("flag", None)]


def test_nocloud_short_fields():
    args = parse("root=/dev/vda1 ds=nocloud;s=http://10.0.2.2:8000/seed/;i=iid-7;h=box ro")
    assert args.datasource == "nocloud"
    assert args.seed_url == "http://10.0.2.2:8000/seed/"
    assert args.seed_url_param == "ds=nocloud;s"
    assert args.instance_id == "iid-7"
    assert args.hostname == "box"
    assert args.problems == []


def test_nocloud_net_long_fields_and_case():
    args = parse("ds=NoCloud-Net;seedfrom=file:///seed/;instance-id=a;local-hostname=b")
    assert (args.datasource, args.seed_url, args.instance_id, args.hostname) == (
        "nocloud", "file:///seed/", "a", "b")


def test_bootseed_namespace():
    args = parse("bootseed.seed=https://h/x/ bootseed.ds=ec2 bootseed.timeout=7.5 bootseed.debug")
    assert args.seed_url == "https://h/x/"
    assert args.datasource == "ec2"
    assert args.timeout == 7.5
    assert args.debug is True
    assert parse("bootseed.debug=0").debug is False


def test_top_level_seedfrom_and_cloud_config_url():
    args = parse("seedfrom=/var/tmp/seed/ cloud-config-url=http://h/cc.yaml")
    assert args.seed_url == "/var/tmp/seed/"
    assert args.cloud_config_url == "http://h/cc.yaml"


def test_last_occurrence_wins():
    assert parse("bootseed.ds=ec2 bootseed.ds=ovf").datasource == "ovf"


def test_bad_values_are_problems_naming_the_parameter_and_the_rest_applies():
    args = parse("bootseed.timeout=abc bootseed.ds=azure ds=nocloud;s=ftp://h/;q=1;i=ok "
                 "cloud-config-url=relative bootseed.debug")
    wheres = [p.where for p in args.problems]
    assert "kernel command line: bootseed.timeout=abc" in wheres
    assert "kernel command line: bootseed.ds=azure" in wheres
    assert any("ftp://h/" in w for w in wheres)
    assert any("q=1" in p.message for p in args.problems)
    assert "kernel command line: cloud-config-url=relative" in wheres
    assert args.timeout is None
    assert args.seed_url is None
    assert args.instance_id == "ok"
    assert args.datasource == "nocloud"
    assert args.debug is True


def test_timeout_range():
    assert parse("bootseed.timeout=0").timeout is None
    assert parse("bootseed.timeout=601").timeout is None
    assert parse("bootseed.timeout=600").timeout == 600.0


def test_ds_fields_only_for_nocloud():
    args = parse("ds=ec2;s=http://h/")
    assert args.datasource == "ec2"
    assert args.seed_url is None
    assert args.problems and "only applies to ds=nocloud" in args.problems[0].message


def test_problems_are_contract_problems_naming_the_parameter():
    kernel = parse_kernel("bootseed.ds=azure bootseed.root=sda1")
    assert all(isinstance(p, Problem) for p in kernel.problems)
    assert [p.where for p in kernel.problems] == [
        "kernel command line: bootseed.ds=azure", "kernel command line: bootseed.root=sda1"]
    # Each stage reports only its own group's problems.
    assert [p.where for p in kernel.seed.problems] == ["kernel command line: bootseed.ds=azure"]
    assert [p.where for p in kernel.rootswitch.problems] == [
        "kernel command line: bootseed.root=sda1"]


def test_on_off_words_are_one_set():
    assert ON_WORDS.isdisjoint(OFF_WORDS)
    for word in ("0", "off", "no", "false", "disable", "disabled", "none", "OFF", " No "):
        assert parse_switch(word) is False, word
    for word in ("1", "on", "yes", "true", "enable", "enabled", "On"):
        assert parse_switch(word) is True, word
    for value in (None, "", "importtime", "eth0", "maybe"):
        assert parse_switch(value) is None, value


def test_kernel_parameters():
    kernel = parse_kernel("ro bootseed.rescue=A,B bootseed.root=LABEL=r aufs=tmpfs "
                          "bootseed.volumes=off init=/lib/systemd/systemd")
    params = kernel.rootswitch
    assert (params.rescue, params.root, params.overlay, params.overlay_param) == (
        "A,B", "LABEL=r", "tmpfs", "aufs")
    assert params.consume is False and params.init == "/lib/systemd/systemd"
    assert kernel.problems == []
    assert parse_kernel("bootseed.overlay=LABEL=rw,mkfs").rootswitch.overlay == "LABEL=rw,mkfs"
    bad = parse_kernel("bootseed.root=sda1 bootseed.volumes=maybe bootseed.early=off")
    assert bad.rootswitch.root is None and bad.rootswitch.consume is None
    assert not bad.early.enabled
    assert [p.where for p in bad.problems] == [
        "kernel command line: bootseed.root=sda1", "kernel command line: bootseed.volumes=maybe"]


@pytest.mark.parametrize("word", [*sorted(OFF_WORDS), "OFF", "Disabled"])
def test_every_off_word_turns_the_early_stage_off(word: str):
    assert parse_kernel(f"bootseed.early={word}").early.enabled is False
    # bootseed=off: nothing of bootseed this boot, the initramfs stage included.
    assert parse_kernel(f"bootseed={word}").early.enabled is False
    assert parse_kernel(f"bootseed={word}").disabled_by == f"bootseed={word}"


def test_early_values_that_are_not_off_words_keep_it_on():
    for text in ("", "bootseed.early", "bootseed.early=on", "bootseed.early=importtime"):
        assert parse_kernel(text).early.enabled is True, text
    assert parse_kernel("bootseed.early=importtime").early.importtime is True
    # An off word anywhere wins, as in the shell shims, which exit at the first one.
    assert not parse_kernel("bootseed.early=off bootseed.early=importtime").early.enabled


def test_net_switch_device_and_ip_values():
    assert parse_kernel("bootseed.net=off").net.off is True
    assert parse_kernel("bootseed.net=none").net.off is True
    assert parse_kernel("bootseed.net=eth1").net.device == "eth1"
    on = parse_kernel("bootseed.net=on").net
    assert (on.off, on.device) == (False, None)
    net = parse_kernel("ip=dhcp quiet ip=10.0.0.2::10.0.0.1:255.255.255.0::eth0:off").net
    assert net.ip_values == ("dhcp", "10.0.0.2::10.0.0.1:255.255.255.0::eth0:off")
    assert (net.off, net.device) == (False, None)


def test_late_side_parameters():
    kernel = parse_kernel('root=UUID=abc ro console=ttyS0 bootseed=off '
                          'bootseed.fallback=tries-exhausted bootseed.lab=1 bootseed.lab.files=/a '
                          'bootseed.lab.poweroff=0 bootseed.lab.flag -- bootseed.lab.after=1')
    assert kernel.root == "UUID=abc"
    assert kernel.disabled_by == "bootseed=off"
    assert kernel.fallback == "tries-exhausted"
    assert dict(kernel.lab) == {"files": "/a", "poweroff": "0", "flag": ""}
    assert parse_kernel("bootseed=disabled").disabled_by == "bootseed=disabled"
    for text in ("", "bootseed", "bootseed=on", "bootseed.fallback"):
        kernel = parse_kernel(text)
        assert kernel.disabled_by is None and kernel.fallback is None, text
    assert parse_kernel("bootseed.fallback=").fallback == ""


def test_params_keep_order_and_format_back():
    kernel = parse_kernel('a b=1 c="x y"')
    assert kernel.params == (("a", None), ("b", "1"), ("c", "x y"))
    assert [format_param(n, v) for n, v in kernel.params] == ["a", "b=1", 'c="x y"']
    assert split_params(" ".join(format_param(n, v) for n, v in kernel.params)) == list(
        kernel.params)


def test_the_result_is_frozen():
    kernel = parse_kernel("bootseed.ds=ec2")
    with pytest.raises(AttributeError):
        kernel.seed.datasource = "ovf"  # type: ignore[misc]
    with pytest.raises(TypeError):
        kernel.lab["x"] = "y"  # type: ignore[index]


# -- the rule: one parser, one set of on/off words ----------------------------------------

WORD_SET_NAMES = {"ON_WORDS", "OFF_WORDS"}


def one_parser_violations(source: str, name: str) -> list[str]:
    """Where ``source`` defines its own on/off word set or splits the kernel command line.

    A split counts when its receiver mentions ``cmdline`` (``cmdline.split()``,
    ``(proc / "cmdline").read_text().split()``) or when the same function reads a
    ``cmdline`` file (a ``"cmdline"`` or ``"/proc/cmdline"`` literal) and splits anything
    without arguments (whitespace splitting is what the kernel's own rules replace).
    """
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id in WORD_SET_NAMES:
                found.append((node.lineno, f"defines {target.id}"))
    for scope in _scopes(tree):
        reads = any(isinstance(n, ast.Constant) and n.value in ("cmdline", "/proc/cmdline")
                    for n in scope)
        for call in scope:
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr in ("split", "rsplit")):
                continue
            receiver = ast.get_source_segment(source, call.func.value) or ""
            if "cmdline" in receiver or (reads and not call.args):
                found.append((call.lineno, f"splits the kernel command line "
                                           f"({receiver}.{call.func.attr})"))
    return [f"{name}:{line}: {what}" for line, what in sorted(set(found))]


def _scopes(tree: ast.Module) -> list[list[ast.AST]]:
    """The nodes of the module body and of each function, a nested function's nodes in
    its own scope only."""
    scopes: list[list[ast.AST]] = []

    def collect(root: ast.AST) -> None:
        nodes: list[ast.AST] = []
        stack = list(ast.iter_child_nodes(root))
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                collect(node)
                continue
            nodes.append(node)
            stack.extend(ast.iter_child_nodes(node))
        scopes.append(nodes)

    collect(tree)
    return scopes


def test_the_rule_catches_the_old_ways():
    old = '''
OFF_WORDS = frozenset({"off"})

def disabled(proc):
    words = (proc / "cmdline").read_text().split()
    return "bootseed=off" in words

def origin(cmdline: str) -> list[str]:
    return [w for w in cmdline.split()]

def report():
    with open("/proc/cmdline") as handle:
        text = handle.read()
    return text.split()
'''
    violations = one_parser_violations(old, "old.py")
    assert [v.split(": ", 1)[1].split(" (")[0] for v in violations] == [
        "defines OFF_WORDS", "splits the kernel command line",
        "splits the kernel command line", "splits the kernel command line"]
    fine = '''
def uptime(proc):
    return float((proc / "uptime").read_text().split()[0])
'''
    assert one_parser_violations(fine, "fine.py") == []


def test_only_contract_cmdline_splits_the_command_line_or_defines_on_off_words():
    violations: list[str] = []
    for folder in PRODUCT_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == THE_PARSER:
                continue
            rel = str(path.relative_to(REPO))
            violations += one_parser_violations(path.read_text(encoding="utf-8"), rel)
    assert violations == []


def _case_words(path: Path, param: str, known: str) -> set[str]:
    """The values of ``param=`` in the shell ``case`` pattern list holding ``param=known``."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    patterns = next(ln for ln in text.splitlines()
                    if f"{param}={known} " in ln and not ln.lstrip().startswith("#"))
    patterns = patterns.split(")", 1)[0]
    return set(re.findall(rf"(?:^|[\s|]){re.escape(param)}=([^\s|)]+)", patterns))


@pytest.mark.parametrize("shim", ["initramfs-tools/scripts/init-premount/bootseed",
                                  "initramfs-tools/scripts/local-bottom/bootseed-root"])
def test_shell_shims_know_the_same_off_words(shim: str):
    path = REPO / "initramfs-hooks" / shim
    assert _case_words(path, "bootseed.early", "off") == set(OFF_WORDS)
    assert _case_words(path, "bootseed", "off") == set(OFF_WORDS)


def test_the_generator_knows_the_same_on_and_off_words():
    path = REPO / "systemd" / "bootseed-generator"
    assert _case_words(path, "bootseed", "off") == set(OFF_WORDS)
    assert _case_words(path, "bootseed", "on") == set(ON_WORDS)


def test_the_lab_report_runs_on_its_own_copy_of_the_contract(tmp_path: Path):
    from bootseed.image_builder.rootfs import install_report_script

    install_report_script(tmp_path)
    # -I -S: no site-packages, so no installed bootseed: only the copy beside report.py.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import report; "
            "print(report.parse_cmdline('root=/dev/vda1 bootseed.lab.files=\"/a /b\"'))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "{'files': '/a /b'}"


@pytest.mark.parametrize("word", sorted(OFF_WORDS))
def test_value_parsers_read_every_off_word_as_off(word: str):
    from bootseed.early.ipconfig import parse_ip
    from bootseed.early.overlay import parse_request
    from bootseed.early.rescue import parse_labels

    assert parse_ip(word).method == "off"
    assert parse_ip(f"eth0:{word}").method == "off"
    assert parse_labels(word) == ()
    assert parse_request(word, "kernel command line: bootseed.overlay") is None


@pytest.mark.parametrize("word", sorted(ON_WORDS))
def test_value_parsers_read_on_words_as_the_default(word: str):
    from bootseed.early.ipconfig import parse_ip
    from bootseed.early.rescue import DEFAULT_LABELS, parse_labels

    assert parse_ip(word).method == "dhcp"
    assert parse_labels(word) == DEFAULT_LABELS


def test_network_config_disabled_is_a_typed_field():
    assert parse_kernel("quiet network-config=disabled").network_config_disabled is True
    assert parse_kernel("quiet").network_config_disabled is False
    # Only the word cloud-init documents turns it off; a payload is not a switch.
    assert parse_kernel("network-config=e30K").network_config_disabled is False


@pytest.mark.parametrize(("text", "mode"), [
    ("ro quiet", "auto"),
    ("bootseed.sshd=always", "always"),
    ("bootseed.sshd=AUTO", "auto"),
    ("bootseed.sshd=off", "off"),
    ("bootseed.sshd=no", "off"),
    ("bootseed.sshd=always bootseed.sshd=off", "off"),
])
def test_sshd_mode(text: str, mode: str):
    params = parse_kernel(text)
    assert params.sshd.mode == mode
    assert params.sshd.problems == []


def test_sshd_bad_value_is_a_problem_and_keeps_the_default():
    params = parse_kernel("bootseed.sshd=sometimes bootseed.sshd")
    assert params.sshd.mode == "auto"
    assert [p.where for p in params.problems] == ["kernel command line: bootseed.sshd=sometimes",
                                                  "kernel command line: bootseed.sshd="]
    assert "expected auto, off or always" in params.sshd.problems[0].message
