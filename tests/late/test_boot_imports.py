"""What a later boot of the same instance imports: none of the heavy libraries.

Runs ``bootseed run`` (the console script's ``main``, as systemd starts it) in a
fresh interpreter on a temp target root twice with the same seed: a first boot
that generates host keys, writes users and files and validates the config,
then the per-boot path with all state present. The second run must not import
jsonschema (its verdict is cached per instance), cryptography (host keys exist;
fingerprints come from the key blob), requests or jinja2 (no URL, no template),
nor the code of modules that do not run again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from testsupport.chroot import make_shell_root
from testsupport.runenv import plant_seed
from testsupport.targetfs import make_target

HEAVY = ("jsonschema", "cryptography", "requests", "jinja2")

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvb3RzZWVkLWltcG9ydC10ZXN0LWtleS1hYWFhYWFh a@t"
USER_DATA = f"""#cloud-config
hostname: imports-host
fqdn: imports-host.example.test
users:
  - default
  - name: alice
    groups: [adm]
    shell: /bin/sh
    ssh_authorized_keys: ["{KEY}"]
write_files:
  - path: /etc/imports/test.conf
    content: "x = 1\\n"
bootcmd:
  - echo boot >> /bootcmd-count
runcmd:
  - echo ran > /tmp/runcmd-done
unknown_to_bootseed: 1
"""

_BOOT = """
import json, sys
from bootseed.late.cli import main
rc = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, out)
"""


def _boot(root: Path) -> tuple[set[str], dict[str, object]]:
    report = root.parent / "imports.json"
    subprocess.run(
        [sys.executable, "-c", _BOOT, str(report), "run", "--root", str(root),
         "--network-timeout", "0", "--console", str(root.parent / "console.txt")],
        check=True, capture_output=True, text=True, timeout=120,
    )
    data = json.loads(report.read_text())
    assert data["rc"] == 0
    status = json.loads((root / "run/bootseed/status.json").read_text())
    return set(data["modules"]), status


def _heavy(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} & set(HEAVY)


def test_unchanged_second_boot_imports_nothing_heavy(tmp_path: Path) -> None:
    root = make_shell_root(make_target(tmp_path / "root").root).root
    plant_seed(root, USER_DATA)

    first, status1 = _boot(root)
    assert status1["state"] == "done", status1
    # The check can see these imports: a first boot needs two of them.
    assert {"jsonschema", "cryptography"} <= _heavy(first)

    second, status2 = _boot(root)
    assert status2["state"] == "done", status2
    assert _heavy(second) == set(), sorted(m for m in second if m.split(".")[0] in HEAVY)
    # Per-instance modules that ran on the first boot are not even imported.
    for name in ("ssh", "users_groups", "write_files", "runcmd", "set_hostname"):
        assert f"bootseed.late.modules.{name}" in first
        assert f"bootseed.late.modules.{name}" not in second, name
    # The user-data is the same: its processed result comes from the instance's cache.
    assert "bootseed.late.userdata.engine" in first
    assert "bootseed.late.userdata.engine" not in second
    # ... and the per-boot ones still run.
    ran = {m["name"] for m in status2["modules"] if m["status"] == "ok"}
    assert {"bootcmd", "update_hostname", "final_message"} <= ran
    assert (root / "bootcmd-count").read_text().count("boot") == 2
    # The problems (the unknown key's warning) are reported the same way.
    assert status2["problems"] == status1["problems"]
    assert any("unknown_to_bootseed" in p["message"] for p in status2["problems"])


# The command's own import, before its first log line (on the boot's critical path, where
# under TCG OpenSSL's binding behind hashlib alone costs seconds).
# Loaded only where used: host keys and hashing (cryptography, hashlib), schema
# validation (jsonschema, after READY=1), user-data (yaml), instance data (platform).
LATER = ("hashlib", "_hashlib", "uuid", "platform", "jsonschema", "yaml", "cryptography",
         "ssl", "email", "http.client", "urllib.request", "concurrent.futures")


def test_the_command_and_the_runner_import_nothing_heavy() -> None:
    code = ("import json, sys; import bootseed.late.cli, bootseed.late.runner; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = set(json.loads(out))
    assert "bootseed.late.runner" in loaded
    assert sorted(loaded & set(LATER)) == []


_AT_READY = """
import json, sys
from bootseed.late import runner
seen = {}
notify = runner.Runner._notify_ready
def at_ready(self, *args):
    seen.setdefault("modules", sorted(sys.modules))
    return notify(self, *args)
runner.Runner._notify_ready = at_ready
from bootseed.late.cli import main
rc = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"rc": rc, "modules": seen.get("modules")}, out)
"""


def test_a_first_boot_with_a_cached_seed_reaches_ready_without_the_discovery_code(
        tmp_path: Path) -> None:
    root = make_shell_root(make_target(tmp_path / "root").root).root
    plant_seed(root, USER_DATA)
    report = tmp_path / "ready.json"
    subprocess.run(
        [sys.executable, "-c", _AT_READY, str(report), "run", "--root", str(root), "--notify",
         "--network-timeout", "0", "--console", str(tmp_path / "console.txt")],
        check=True, capture_output=True, text=True, timeout=120)
    data = json.loads(report.read_text())
    assert data["rc"] == 0 and data["modules"], data
    loaded = set(data["modules"])
    assert "bootseed.late.modules.ssh" in loaded  # READY=1 came after the init modules
    # The early stage's seed is in the cache: no source is searched, none imported; and
    # schema validation waits until after READY=1.
    assert {"bootseed.early.discover", "bootseed.early.sources", "jsonschema"} & loaded == set()
