"""What the runner must know about each module file before importing it.

GENERATED from the ``MODULE`` specs in ``late/modules/*.py`` by
``python -m bootseed.late.specindex --write``: do not edit. Change the
module's spec and run that command (tests/late/test_specindex.py fails while
this file is stale).

Planning a boot needs every module's stage, order, default frequency,
activating keys and aliases, but only the modules that will run need their
code. This table, keyed by file name under ``late/modules/``, lets the registry
plan without importing the rest. A module file missing here is imported at
startup, so a new module works before the index is regenerated; it only costs
its import on every boot until then.
"""

from __future__ import annotations

from bootseed.late.model import Frequency, ModuleFacts, Stage

INDEX: dict[str, ModuleFacts] = {
    # init stage, in default order
    "network_config": ModuleFacts(
        name="network_config",
        stage=Stage.INIT,
        order=0,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "bootcmd": ModuleFacts(
        name="bootcmd",
        stage=Stage.INIT,
        order=10,
        frequency=Frequency.PER_BOOT,
        activate_keys=("bootcmd",),
        aliases=(),
    ),
    "write_files": ModuleFacts(
        name="write_files",
        stage=Stage.INIT,
        order=20,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=("write_files",),
        aliases=(),
    ),
    "set_hostname": ModuleFacts(
        name="set_hostname",
        stage=Stage.INIT,
        order=30,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "update_hostname": ModuleFacts(
        name="update_hostname",
        stage=Stage.INIT,
        order=40,
        frequency=Frequency.PER_BOOT,
        activate_keys=(),
        aliases=(),
    ),
    "update_etc_hosts": ModuleFacts(
        name="update_etc_hosts",
        stage=Stage.INIT,
        order=50,
        frequency=Frequency.PER_BOOT,
        activate_keys=(),
        aliases=(),
    ),
    "users_groups": ModuleFacts(
        name="users_groups",
        stage=Stage.INIT,
        order=60,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "ssh": ModuleFacts(
        name="ssh",
        stage=Stage.INIT,
        order=70,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "volumes": ModuleFacts(
        name="volumes",
        stage=Stage.INIT,
        order=80,
        frequency=Frequency.PER_BOOT,
        activate_keys=(),
        aliases=(),
    ),
    # config stage, in default order
    "apt_pipelining": ModuleFacts(
        name="apt_pipelining",
        stage=Stage.CONFIG,
        order=20,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=("apt_pipelining",),
        aliases=("apt-pipelining",),
    ),
    "apt_configure": ModuleFacts(
        name="apt_configure",
        stage=Stage.CONFIG,
        order=30,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(
            "apt",
            "apt_proxy",
            "apt_http_proxy",
            "apt_https_proxy",
            "apt_ftp_proxy",
            "apt_preserve_sources_list",
            "apt_custom_sources_list",
            "add_apt_repo_match",
            "debconf_selections",
            "apt_mirror",
            "apt_mirror_search",
            "apt_mirror_search_dns",
            "apt_sources",
        ),
        aliases=("apt-configure",),
    ),
    "runcmd": ModuleFacts(
        name="runcmd",
        stage=Stage.CONFIG,
        order=100,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=("runcmd",),
        aliases=(),
    ),
    # final stage, in default order
    "package_update_upgrade_install": ModuleFacts(
        name="package_update_upgrade_install",
        stage=Stage.FINAL,
        order=5,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(
            "packages",
            "package_update",
            "package_upgrade",
            "package_reboot_if_required",
            "apt_update",
            "apt_upgrade",
            "apt_reboot_if_required",
        ),
        aliases=("package-update-upgrade-install",),
    ),
    "write_files_deferred": ModuleFacts(
        name="write_files_deferred",
        stage=Stage.FINAL,
        order=10,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=("write_files",),
        aliases=(),
    ),
    "scripts_vendor": ModuleFacts(
        name="scripts_vendor",
        stage=Stage.FINAL,
        order=20,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "scripts_per_once": ModuleFacts(
        name="scripts_per_once",
        stage=Stage.FINAL,
        order=30,
        frequency=Frequency.PER_ONCE,
        activate_keys=(),
        aliases=(),
    ),
    "scripts_per_boot": ModuleFacts(
        name="scripts_per_boot",
        stage=Stage.FINAL,
        order=40,
        frequency=Frequency.PER_BOOT,
        activate_keys=(),
        aliases=(),
    ),
    "scripts_per_instance": ModuleFacts(
        name="scripts_per_instance",
        stage=Stage.FINAL,
        order=50,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "scripts_user": ModuleFacts(
        name="scripts_user",
        stage=Stage.FINAL,
        order=60,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "ssh_authkey_fingerprints": ModuleFacts(
        name="ssh_authkey_fingerprints",
        stage=Stage.FINAL,
        order=70,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "keys_to_console": ModuleFacts(
        name="keys_to_console",
        stage=Stage.FINAL,
        order=80,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=(),
        aliases=(),
    ),
    "phone_home": ModuleFacts(
        name="phone_home",
        stage=Stage.FINAL,
        order=90,
        frequency=Frequency.PER_INSTANCE,
        activate_keys=("phone_home",),
        aliases=(),
    ),
    "final_message": ModuleFacts(
        name="final_message",
        stage=Stage.FINAL,
        order=100,
        frequency=Frequency.PER_BOOT,
        activate_keys=(),
        aliases=("final-message",),
    ),
    "boot_health": ModuleFacts(
        name="boot_health",
        stage=Stage.FINAL,
        order=1000,
        frequency=Frequency.PER_BOOT,
        activate_keys=(),
        aliases=(),
    ),
}
