"""The files generated from the module specs (``late/modindex.py`` and the module
table in ``docs/modules.md``) are current, and the order they give is today's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.late.model import Frequency, ModuleFacts, Stage
from bootseed.late.registry import load_registry
from bootseed.late.specindex import (
    BEGIN,
    END,
    MODINDEX,
    WRITE_COMMAND,
    ModuleRow,
    SpecIndexError,
    in_default_order,
    stale_files,
    write_files,
)

# cloud-init's order within each stage (the hand-written registry.DEFAULT_ORDER
# the spec orders replaced, plus the apt modules where cloud-init runs them, and
# network_config first: cloud-init applies network configuration before any module).
ORDER_BEFORE_SPECS = {
    Stage.INIT: ["network_config", "metadata_lockdown", "seed_random", "bootcmd",
                 "write_files", "growpart", "resizefs", "disk_setup", "bootseed_raid", "mounts",
                 "set_hostname", "update_hostname", "update_etc_hosts", "ca_certs", "rsyslog",
                 "users_groups", "ssh", "volumes"],
    Stage.CONFIG: ["ssh_import_id", "keyboard", "locale", "set_passwords", "apt_pipelining",
                   "apt_configure", "ntp", "timezone", "resolv_conf", "runcmd"],
    Stage.FINAL: ["package_update_upgrade_install", "write_files_deferred", "puppet", "chef",
                  "ansible", "mcollective", "salt_minion", "scripts_vendor",
                  "scripts_per_once", "scripts_per_boot", "scripts_per_instance", "scripts_user",
                  "ssh_authkey_fingerprints", "keys_to_console", "phone_home", "final_message",
                  "power_state_change", "boot_health"],
}


def test_generated_files_are_current() -> None:
    stale = [str(path) for path in stale_files()]
    assert stale == [], f"stale, generated from the module specs: {stale}; run {WRITE_COMMAND}"


def test_check_command_exits_0_when_current() -> None:
    proc = subprocess.run([sys.executable, "-m", "bootseed.late.specindex", "--check"],
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_stale_copies_are_found_and_rewritten_keeping_the_prose(tmp_path: Path) -> None:
    modindex, docs = tmp_path / "modindex.py", tmp_path / "modules.md"
    modindex.write_text(MODINDEX.read_text().replace("order=10,", "order=15,", 1))
    docs.write_text(f"# intro\n\n{BEGIN}\nan old table\n{END}\n\nnotes stay\n")
    assert stale_files(modindex, docs) == [modindex, docs]
    assert write_files(modindex, docs) == [modindex, docs]
    assert modindex.read_text() == MODINDEX.read_text()
    text = docs.read_text()
    assert text.startswith(f"# intro\n\n{BEGIN}\n") and text.endswith(f"{END}\n\nnotes stay\n")
    assert "an old table" not in text
    assert ("| [`final_message`](../late/modules/final_message.py) | final | 100 | per-boot "
            "| `final_message` | `final-message` |") in text
    assert "| [`write_files_deferred`](../late/modules/write_files_deferred.py) | final | 10 | "\
           "per-instance | — | — |" in text
    assert stale_files(modindex, docs) == [] and write_files(modindex, docs) == []


def test_docs_without_the_markers_are_refused(tmp_path: Path) -> None:
    docs = tmp_path / "modules.md"
    docs.write_text(f"# modules\n{END}\n{BEGIN}\n")
    with pytest.raises(SpecIndexError, match="needs the markers"):
        stale_files(tmp_path / "modindex.py", docs)
    with pytest.raises(SpecIndexError, match="run this in a source checkout"):
        stale_files(tmp_path / "modindex.py", tmp_path / "missing.md")


def test_default_order_is_cloud_inits() -> None:
    for lazy in (False, True):
        registry = load_registry(lazy=lazy)
        for stage, names in ORDER_BEFORE_SPECS.items():
            assert registry.default_order(stage) == names, (lazy, stage)
    # boot_health marks the boot good only after everything else ran.
    final = [load_registry(lazy=True).meta(n).order for n in ORDER_BEFORE_SPECS[Stage.FINAL]]
    assert max(final[:-1]) < final[-1]


def test_one_order_twice_in_a_stage_is_refused() -> None:
    def row(name: str, stage: Stage, order: int) -> ModuleRow:
        return ModuleRow(name, ModuleFacts(name, stage, order, Frequency.PER_BOOT), ())

    rows = [row("b", Stage.FINAL, 10), row("a", Stage.INIT, 10), row("c", Stage.FINAL, 5)]
    assert [r.file_name for r in in_default_order(rows)] == ["a", "c", "b"]
    with pytest.raises(SpecIndexError, match="modules b and d both have order 10 in the final"):
        in_default_order([*rows, row("d", Stage.FINAL, 10)])


def test_the_index_imports_no_module_file() -> None:
    code = ("import sys, bootseed.late.modindex as m; "
            "print(len(m.INDEX), sorted(n for n in sys.modules if 'late.modules' in n))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=1)
    assert out == [str(len(load_registry().specs)), "[]\n"]
