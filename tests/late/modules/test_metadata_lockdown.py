"""The metadata fence: the ruleset text, the module's choice, and the real thing.

The real-thing test loads the ruleset with the host's nft into a network
namespace of its own (with a private /run, where the ruleset file is kept),
puts 169.254.169.254 on that namespace's loopback with a TCP listener, and
connects as root and as uid 65534: the host's own network is never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bootseed.contract.problems import Level
from bootseed.late import metadatafence
from bootseed.late.metadatafence import Fence
from bootseed.late.model import InstanceInfo
from bootseed.late.modules import metadata_lockdown

from testsupport.targetfs import make_ctx, make_target

ROOT_ONLY_RULESET = """\
# bootseed: only root (uid 0) may reach the metadata service
table inet bootseed_metadata
delete table inet bootseed_metadata
table inet bootseed_metadata {
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 169.254.169.254 meta skuid != 0 reject with icmpx admin-prohibited
\t\tip6 daddr fd00:ec2::254 meta skuid != 0 reject with icmpx admin-prohibited
\t}
}
"""
EVERYONE_RULESET = """\
# bootseed: nobody may reach the metadata service
table inet bootseed_metadata
delete table inet bootseed_metadata
table inet bootseed_metadata {
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 169.254.169.254 reject with icmpx admin-prohibited
\t\tip6 daddr fd00:ec2::254 reject with icmpx admin-prohibited
\t}
}
"""


def test_rulesets_are_exactly_these() -> None:
    assert metadatafence.ruleset(Fence.ROOT_ONLY) == ROOT_ONLY_RULESET
    assert metadatafence.ruleset(Fence.EVERYONE) == EVERYONE_RULESET


@pytest.mark.parametrize(("source", "cfg", "fence"), [
    ("ec2", {}, Fence.ROOT_ONLY),
    ("nocloud", {}, None),
    ("ec2", {"metadata_lockdown": False}, None),
    ("nocloud", {"metadata_lockdown": True}, Fence.ROOT_ONLY),
    ("ec2", {"disable_ec2_metadata": True}, Fence.EVERYONE),
    ("nocloud", {"disable_ec2_metadata": True, "metadata_lockdown": False}, Fence.EVERYONE),
    ("ec2", {"disable_ec2_metadata": False}, Fence.ROOT_ONLY),
])
def test_which_fence(tmp_path: Path, source: str, cfg: dict[str, object],
                     fence: Fence | None) -> None:
    ctx = make_ctx(make_target(tmp_path), cfg,
                   instance=InstanceInfo(instance_id="i-1", source=source))
    assert metadata_lockdown.wanted_fence(ctx) is fence
    assert ctx.problems == []


def test_a_value_that_is_not_a_boolean_is_reported_and_the_default_used(tmp_path: Path) -> None:
    ctx = make_ctx(make_target(tmp_path), {"metadata_lockdown": "no"},
                   instance=InstanceInfo(instance_id="i-1", source="ec2"))
    assert metadata_lockdown.wanted_fence(ctx) is Fence.ROOT_ONLY
    (problem,) = ctx.problems
    assert problem.where == "metadata_lockdown" and problem.level is Level.WARNING


def test_a_root_target_is_not_the_running_kernel(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"disable_ec2_metadata": True},
                   instance=InstanceInfo(instance_id="i-1", source="ec2"))
    metadata_lockdown.handle(ctx)
    (problem,) = ctx.problems
    assert problem.level is Level.NOTE and "nobody may reach" in problem.message
    assert not target.exists(metadatafence.RULESET_FILE)


def test_nothing_to_do_off_ec2_without_keys(tmp_path: Path) -> None:
    ctx = make_ctx(make_target(tmp_path), {},
                   instance=InstanceInfo(instance_id="i-1", source="nocloud"))
    metadata_lockdown.handle(ctx)
    assert ctx.problems == []


def test_module_runs_every_boot_first_in_init() -> None:
    spec = metadata_lockdown.MODULE
    assert spec.frequency.value == "per-boot" and spec.stage.value == "init"
    assert "disable_ec2_metadata" in spec.aliases


# Runs inside the namespace as root: apply each fence, probe, undo as `bootseed clean`; prints JSON.
NAMESPACE_PROBE = r"""
import json, os, socket, subprocess
from bootseed.late import metadatafence
from bootseed.late.target import TargetRoot

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True)
server = socket.socket()
server.bind(("169.254.169.254", 80))
server.listen(16)

def reaches(uid):
    pid = os.fork()
    if pid == 0:
        os.setgid(uid); os.setuid(uid)
        try:
            socket.create_connection(("169.254.169.254", 80), timeout=5).close()
            os._exit(0)
        except OSError:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0

def probe():
    listed = subprocess.run(["nft", "list", "table", "inet", "bootseed_metadata"],
                            capture_output=True, text=True)
    return {"root": reaches(0), "nobody": reaches(65534),
            "table": listed.stdout if listed.returncode == 0 else None}

target = TargetRoot()
out = {"before": probe()}
out["root_only"] = metadatafence.apply(target, metadatafence.Fence.ROOT_ONLY).mechanism
out["after_root_only"] = probe()
# Loaded twice in one boot: the table is replaced, not doubled.
metadatafence.apply(target, metadatafence.Fence.ROOT_ONLY)
out["again"] = probe()
out["everyone"] = metadatafence.apply(target, metadatafence.Fence.EVERYONE).mechanism
out["after_everyone"] = probe()
# What `bootseed clean` does on the running system.
from bootseed.late.commands.clean import _remove_metadata_fence
out["removed"] = _remove_metadata_fence(target)
out["after_remove"] = probe()
print(json.dumps(out))
"""


def test_fences_loaded_by_nft_in_a_network_namespace() -> None:
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed on this host (scripts/bootstrap installs nftables)")
    # A private /run too: the ruleset file is written there, not in the host's /run.
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs tmpfs /run && exec "$0" -c "$1"', sys.executable, NAMESPACE_PROBE],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["before"] == {"root": True, "nobody": True, "table": None}
    assert out["root_only"] == "nft"
    after = out["after_root_only"]
    assert (after["root"], after["nobody"]) == (True, False)
    table = after["table"]
    assert "ip daddr 169.254.169.254 meta skuid != 0 reject" in table
    assert "ip6 daddr fd00:ec2::254 meta skuid != 0 reject" in table
    assert out["again"]["table"] == table
    assert out["everyone"] == "nft"
    everyone = out["after_everyone"]
    assert (everyone["root"], everyone["nobody"]) == (False, False)
    assert "skuid" not in everyone["table"]
    assert out["removed"] == ["nftables table inet bootseed_metadata"]
    assert out["after_remove"] == {"root": True, "nobody": True, "table": None}
