from __future__ import annotations

from bootseed.contract.problems import Level
from bootseed.late.apt.config import (
    MirrorEntry,
    pick_mirror,
    read_apt_config,
    resolve_mirror,
)


def test_full_apt_form() -> None:
    conf = read_apt_config({"apt": {
        "preserve_sources_list": False,
        "disable_suites": ["backports"],
        "primary": [{"arches": ["amd64"], "uri": "http://p/debian"},
                    {"arches": ["default"], "search": ["http://a/", "http://b/"]}],
        "security": [{"arches": ["default"], "uri": "http://s/"}],
        "proxy": "http://proxy:3128", "https_proxy": "http://tls-proxy:3128",
        "conf": "APT::Get::Assume-Yes \"true\";",
        "debconf_selections": {"tz": "tzdata tzdata/Areas select Europe"},
        "sources": {"lab.list": {"source": "deb $MIRROR lab main", "keyid": "ABCDEF0123456789",
                                 "keyserver": "hkp://ks"},
                    "extra": {"source": "deb http://x/ y main", "append": False}},
    }})
    assert conf.problems == []
    assert conf.disable_suites == ["backports"]
    assert conf.proxies == {"http": "http://proxy:3128", "https": "http://tls-proxy:3128"}
    assert [s.name for s in conf.sources] == ["lab.list", "extra"]
    assert conf.sources[1].append is False
    assert conf.debconf_selections["tz"].startswith("tzdata")


def test_legacy_keys_fold_in_with_deprecation_notes() -> None:
    conf = read_apt_config({
        "apt_mirror": "http://old/debian", "apt_proxy": "http://p:1",
        "apt_preserve_sources_list": True,
        "apt_sources": [{"source": "deb http://r/ s main", "filename": "r.list"},
                        {"source": "deb http://q/ s main"}],
    })
    assert conf.primary == [MirrorEntry(arches=("default",), uri="http://old/debian")]
    assert conf.proxies == {"http": "http://p:1"}
    assert conf.preserve_sources_list is True
    assert [s.name for s in conf.sources] == ["r.list", "cloud_config_sources.list"]
    notes = {p.where for p in conf.problems if p.level is Level.NOTE}
    assert notes == {"apt_mirror", "apt_proxy", "apt_preserve_sources_list", "apt_sources"}


def test_new_form_wins_over_legacy() -> None:
    conf = read_apt_config({"apt": {"http_proxy": "http://new:1"}, "apt_proxy": "http://old:1"})
    assert conf.proxies == {"http": "http://new:1"}
    assert any("wins" in p.message for p in conf.problems)


def test_wrong_types_are_reported_by_key_and_the_rest_applies() -> None:
    conf = read_apt_config({"apt": {"preserve_sources_list": "yes", "primary": "http://x",
                                    "sources": {"bad": "deb x", "good": {"source": "deb y z"}},
                                    "http_proxy": 7}})
    wheres = sorted(p.where for p in conf.problems)
    assert wheres == ["apt.http_proxy", "apt.preserve_sources_list", "apt.primary",
                      "apt.sources.bad"]
    assert [s.name for s in conf.sources] == ["good"]


def test_numeric_keyid_from_yaml_is_hex_again() -> None:
    conf = read_apt_config({"apt": {"sources": {"n": {"keyid": 0x12345678}}}})
    assert conf.sources[0].keyid == "12345678"


def test_arch_specific_mirror_before_default() -> None:
    entries = [MirrorEntry(arches=("default",), uri="http://d/"),
               MirrorEntry(arches=("arm64", "amd64"), uri="http://a/")]
    assert pick_mirror(entries, "amd64") == entries[1]
    assert pick_mirror(entries, "riscv64") == entries[0]
    assert pick_mirror([], "amd64") is None


def test_search_and_search_dns_take_the_first_reachable() -> None:
    asked: list[str] = []

    def reachable(url: str) -> bool:
        asked.append(url)
        return url in ("http://b/", "http://debian-mirror.lab.test/debian")

    searched = MirrorEntry(search=("http://a/", "http://b/", "http://c/"))
    assert resolve_mirror(searched, "http://fb/", kind="primary", domain=None,
                          reachable=reachable) == "http://b/"
    assert asked == ["http://a/", "http://b/"]
    dns = MirrorEntry(search_dns=True)
    assert resolve_mirror(dns, "http://fb/", kind="primary", domain="lab.test",
                          reachable=reachable) == "http://debian-mirror.lab.test/debian"
    assert resolve_mirror(dns, "http://fb/", kind="security", domain="lab.test",
                          reachable=reachable) == "http://fb/"
