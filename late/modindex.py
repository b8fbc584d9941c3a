"""What the runner must know about each module file before importing it.

Planning a boot needs every module's stage (for the default order), default
frequency, activating keys and aliases, but only the modules that will run
need their code. This table, keyed by file name under ``late/modules/``,
lets the registry plan without importing the rest. A module file missing here
is imported at startup as before, so a new module works without an entry; it
only costs its import on every boot until it gets one.
tests/late/test_registry_stages.py checks that every entry matches the
module's own ``MODULE`` spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from bootseed.late.modules.base import Frequency, Stage

F = Frequency
S = Stage


@dataclass(frozen=True)
class IndexEntry:
    name: str
    stage: Stage
    frequency: Frequency
    activate_keys: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


INDEX: dict[str, IndexEntry] = {
    e.name: e
    for e in (
        IndexEntry("apt_configure", S.CONFIG, F.PER_INSTANCE,
                   ("apt", "apt_proxy", "apt_http_proxy", "apt_https_proxy", "apt_ftp_proxy",
                    "apt_preserve_sources_list", "apt_custom_sources_list",
                    "add_apt_repo_match", "debconf_selections", "apt_mirror",
                    "apt_mirror_search", "apt_mirror_search_dns", "apt_sources"),
                   ("apt-configure",)),
        IndexEntry("apt_pipelining", S.CONFIG, F.PER_INSTANCE, ("apt_pipelining",),
                   ("apt-pipelining",)),
        IndexEntry("boot_health", S.FINAL, F.PER_BOOT),
        IndexEntry("bootcmd", S.INIT, F.PER_BOOT, ("bootcmd",)),
        IndexEntry("final_message", S.FINAL, F.PER_BOOT, (), ("final-message",)),
        IndexEntry("keys_to_console", S.FINAL, F.PER_INSTANCE),
        IndexEntry("package_update_upgrade_install", S.FINAL, F.PER_INSTANCE,
                   ("packages", "package_update", "package_upgrade",
                    "package_reboot_if_required", "apt_update", "apt_upgrade",
                    "apt_reboot_if_required"), ("package-update-upgrade-install",)),
        IndexEntry("phone_home", S.FINAL, F.PER_INSTANCE, ("phone_home",)),
        IndexEntry("runcmd", S.CONFIG, F.PER_INSTANCE, ("runcmd",)),
        IndexEntry("scripts_per_boot", S.FINAL, F.PER_BOOT),
        IndexEntry("scripts_per_instance", S.FINAL, F.PER_INSTANCE),
        IndexEntry("scripts_per_once", S.FINAL, F.PER_ONCE),
        IndexEntry("scripts_user", S.FINAL, F.PER_INSTANCE),
        IndexEntry("scripts_vendor", S.FINAL, F.PER_INSTANCE),
        IndexEntry("set_hostname", S.INIT, F.PER_INSTANCE),
        IndexEntry("ssh", S.INIT, F.PER_INSTANCE),
        IndexEntry("ssh_authkey_fingerprints", S.FINAL, F.PER_INSTANCE),
        IndexEntry("update_etc_hosts", S.INIT, F.PER_BOOT),
        IndexEntry("update_hostname", S.INIT, F.PER_BOOT),
        IndexEntry("users_groups", S.INIT, F.PER_INSTANCE),
        IndexEntry("volumes", S.INIT, F.PER_BOOT),
        IndexEntry("write_files", S.INIT, F.PER_INSTANCE, ("write_files",)),
        IndexEntry("write_files_deferred", S.FINAL, F.PER_INSTANCE, ("write_files",)),
    )
}
