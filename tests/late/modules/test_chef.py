from __future__ import annotations

import json
import stat
from pathlib import Path

from bootseed.contract.problems import Level
from bootseed.late.modules import chef

from testsupport.targetfs import make_ctx, make_target

VALIDATION = "-----BEGIN RSA PRIVATE KEY-----\nMIIEchefvalidation\n-----END RSA PRIVATE KEY-----\n"
# client.rb as Chef documents its settings: symbols for log_level and ssl_verify_mode,
# quoted strings for paths, URLs and names.
GOLDEN_CLIENT_RB = """# Written by bootseed from the chef key of cloud-config.

log_level :info
log_location "/var/log/chef/client.log"
ssl_verify_mode :verify_none
validation_client_name "lab-validator"
validation_key "/etc/chef/validation.pem"
client_key "/etc/chef/client.pem"
chef_server_url "https://chef.example.org/organizations/lab"
environment "production"
node_name "i-test"
json_attribs "/etc/chef/firstboot.json"
file_cache_path "/var/cache/chef"
file_backup_path "/var/backups/chef"
pid_file "/var/run/chef/client.pid"
Chef::Log::Formatter.show_time true
encrypted_data_bag_secret "/etc/chef/encrypted_data_bag_secret"
"""


def _cfg() -> dict:
    return {"chef": {
        "server_url": "https://chef.example.org/organizations/lab",
        "validation_name": "lab-validator",
        "validation_cert": VALIDATION,
        "encrypted_data_bag_secret": "bag-secret-0042",
        "environment": "production",
        "run_list": ["recipe[apache2]", "role[db]"],
        "initial_attributes": {"apache": {"prefork": {"maxclients": 100}}},
    }}


def test_files_as_chef_reads_them(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, _cfg())
    chef.MODULE.handle(ctx)
    assert target.read_text(chef.CONFIG_PATH) == GOLDEN_CLIENT_RB
    assert json.loads(target.read_text(chef.FIRSTBOOT_PATH)) == {
        "run_list": ["recipe[apache2]", "role[db]"],
        "apache": {"prefork": {"maxclients": 100}}}
    for path in (chef.VALIDATION_PATH, chef.SECRET_PATH):
        assert stat.S_IMODE(target.real_path(path).stat().st_mode) == 0o600
    assert target.read_text(chef.VALIDATION_PATH) == VALIDATION
    for directory in chef.DEFAULT_DIRECTORIES:
        assert target.real_path(directory).is_dir()
    # No chef-client here, and no install asked for: files only, nothing to report.
    assert ctx.problems == []


def test_exec_without_a_client_says_so(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    cfg = _cfg()
    cfg["chef"]["exec"] = True
    ctx = make_ctx(target, cfg)
    chef.MODULE.handle(ctx)
    [problem] = ctx.problems
    assert problem.level == Level.WARNING and "chef-client is not installed" in problem.message


def test_gems_is_refused_by_name(tmp_path: Path) -> None:
    target = make_target(tmp_path)
    ctx = make_ctx(target, {"chef": {"install_type": "gems"}})
    chef.MODULE.handle(ctx)
    assert [p.where for p in ctx.problems] == ["chef.install_type"]


def test_a_validation_key_path_stays_a_path() -> None:
    text = chef.render_client_rb({"validation_key": "/srv/keys/v.pem", "node_name": "n1",
                                  "log_level": ":warn", "show_time": False}, "i-1")
    assert 'validation_key "/srv/keys/v.pem"' in text
    assert 'node_name "n1"' in text and "log_level :warn" in text
    assert "Chef::Log::Formatter.show_time false" in text
