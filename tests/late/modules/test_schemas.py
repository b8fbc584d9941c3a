"""The schema fragments of this set of modules accept cloud-init style configs and
name the place of a bad value."""

from __future__ import annotations

import textwrap

import yaml
from bootseed.contract.problems import Level
from bootseed.late.registry import load_registry
from bootseed.late.schema import validate

GOOD = textwrap.dedent(
    """\
    #cloud-config
    system_info:
      default_user: {name: debian, groups: [adm, sudo], sudo: ["ALL=(ALL) NOPASSWD:ALL"]}
    groups: [admins, {devs: [alice]}]
    users:
      - default
      - name: alice
        groups: admins, sudo
        sudo: false
        lock_passwd: false
        plain_text_passwd: pw
        ssh_authorized_keys: ["ssh-ed25519 AAAA x"]
        uid: 2001
    write_files:
      - path: /etc/a
        content: !!binary H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==
        encoding: gzip
        permissions: 0644
      - {path: /etc/b, content: hi, owner: "alice:devs", permissions: "0600", defer: true}
    ssh_pwauth: false
    disable_root: true
    ssh_genkeytypes: [ed25519, rsa]
    ssh_keys: {ed25519_private: x, ed25519_public: y}
    ssh_fp_console_blacklist: [ssh-rsa]
    no_ssh_fingerprints: false
    hostname: web1
    fqdn: web1.example.com
    prefer_fqdn_over_hostname: false
    manage_etc_hosts: localhost
    phone_home: {url: "http://127.0.0.1/$INSTANCE_ID/", post: [instance_id, fqdn], tries: 3}
    """
)


def test_typical_config_is_clean() -> None:
    # Clean: no errors or warnings. The one note is for the integer permissions, a form
    # cloud-init's runtime accepts but its schema does not (issue 20).
    problems = validate(yaml.safe_load(GOOD), load_registry())
    assert [p for p in problems if p.level is not Level.NOTE] == []
    assert [p.where for p in problems] == ["write_files[0].permissions"]


def test_bad_values_are_errors_with_their_path() -> None:
    cfg = yaml.safe_load(GOOD)
    cfg["write_files"][1]["encoding"] = "zip"
    cfg["manage_etc_hosts"] = "always"
    cfg["phone_home"]["post"] = ["everything"]
    cfg["ssh_keys"]["dss_private"] = "x"
    cfg["users"][1]["uid"] = "abc"
    problems = validate(cfg, load_registry())
    where = sorted(p.where for p in problems if p.level == "error")
    assert len(where) == 5, problems
    text = " ".join(f"{p.where} {p.message}" for p in problems)
    for fragment in ("write_files", "manage_etc_hosts", "phone_home", "ssh_keys", "users"):
        assert fragment in text
