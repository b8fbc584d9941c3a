import json

from bootseed.contract.seedcache import read_seed_cache, write_seed_cache
from bootseed.early.discover import discover
from bootseed.early.sources.nocloud import seed_file_urls
from bootseed.image_builder.mocks.static import StaticServer

from .seedhelpers import isolated_config, write_seed_dir

USER_DATA = b"#cloud-config\nruncmd: [true]\n"


def test_seed_file_urls_rules():
    assert seed_file_urls("http://h/s/")["meta-data"] == "http://h/s/meta-data"
    assert seed_file_urls("http://h/node1-")["user-data"] == "http://h/node1-user-data"
    assert seed_file_urls("http://h/%s.txt?x=1")["vendor-data"] == "http://h/vendor-data.txt?x=1"


def test_seed_dir_bootseed_path_wins_over_cloud_init_path(tmp_path):
    cfg = isolated_config(tmp_path)
    write_seed_dir(tmp_path / "root/var/lib/cloud/seed/nocloud",
                   {"meta-data": "instance-id: old\n", "user-data": "#cloud-config\n"})
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                   {"meta-data": "instance-id: iid-dir\nlocal-hostname: h1\n"
                                 "public-keys:\n  - ssh-ed25519 AAAA k1\n",
                    "user-data": USER_DATA, "network-config": "version: 2\n"})
    seed = discover(cfg)
    assert seed.source == "nocloud"
    assert seed.instance_id == "iid-dir"
    assert seed.metadata["local-hostname"] == "h1"
    assert seed.metadata["public-keys"] == ["ssh-ed25519 AAAA k1"]
    assert seed.payloads["user-data"] == USER_DATA
    assert seed.payloads["network-config"] == b"version: 2\n"
    assert "vendor-data" not in seed.payloads
    assert seed.problems == []
    assert [t.name for t in seed.timings][-1] == "discover"


def test_cloud_init_seed_dir_is_used_and_cmdline_overrides(tmp_path):
    cfg = isolated_config(tmp_path, "ds=nocloud;i=iid-cmd;h=cmdhost")
    write_seed_dir(tmp_path / "root/var/lib/cloud/seed/nocloud-net",
                   {"meta-data": "instance-id: iid-md\nlocal-hostname: mdhost\n"})
    seed = discover(cfg)
    assert seed.location.endswith("var/lib/cloud/seed/nocloud-net")
    assert seed.instance_id == "iid-cmd"
    assert seed.metadata["local-hostname"] == "cmdhost"


def test_missing_instance_id_gets_default_and_a_problem(tmp_path):
    cfg = isolated_config(tmp_path)
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud", {"user-data": USER_DATA})
    seed = discover(cfg)
    assert seed.instance_id == "iid-nocloud"
    assert any("no instance-id" in p.message for p in seed.problems)


def test_broken_meta_data_is_reported_with_its_line_and_user_data_still_applies(tmp_path):
    cfg = isolated_config(tmp_path, "ds=nocloud;i=iid-x")
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                   {"meta-data": b"instance-id: a\n  bad: [unclosed\n", "user-data": USER_DATA})
    seed = discover(cfg)
    assert seed.instance_id == "iid-x"
    assert seed.payloads["user-data"] == USER_DATA
    [problem] = seed.problems
    assert problem.where.endswith("meta-data")
    assert "line" in problem.message


def test_seed_url_over_http(tmp_path):
    seed_dir = write_seed_dir(tmp_path / "www/seed", {
        "meta-data": "instance-id: iid-url\nlocal-hostname: web\n",
        "user-data": USER_DATA, "vendor-data": "#cloud-config\n{}\n"})
    with StaticServer(tmp_path / "www") as srv:
        cfg = isolated_config(tmp_path, f"ds=nocloud-net;s={srv.url}/seed/")
        seed = discover(cfg)
        paths = sorted(r.path for r in srv.requests)
    assert seed.source == "nocloud"
    assert seed.location == f"{srv.url}/seed/"
    assert seed.instance_id == "iid-url"
    assert seed.payloads["user-data"] == USER_DATA
    assert seed.payloads["vendor-data"] == (seed_dir / "vendor-data").read_bytes()
    assert seed.found["user-data"] == f"{srv.url}/seed/user-data"
    assert paths == ["/seed/meta-data", "/seed/network-config", "/seed/user-data",
                     "/seed/vendor-data"]
    assert seed.problems == []


def test_seed_url_percent_s_and_prefix(tmp_path):
    write_seed_dir(tmp_path / "www", {"meta-data.txt": "instance-id: a\n",
                                      "n1-meta-data": "instance-id: b\n"})
    with StaticServer(tmp_path / "www") as srv:
        a = discover(isolated_config(tmp_path, f"bootseed.seed={srv.url}/%s.txt"))
        b = discover(isolated_config(tmp_path, f"bootseed.seed={srv.url}/n1-"))
    assert (a.instance_id, b.instance_id) == ("a", "b")


def test_seed_url_without_trailing_slash_explains_the_rule(tmp_path):
    write_seed_dir(tmp_path / "www/seed", {"meta-data": "instance-id: a\n"})
    with StaticServer(tmp_path / "www") as srv:
        seed = discover(isolated_config(tmp_path, f"bootseed.seed={srv.url}/seed"))
    assert seed.source == "none"
    [problem] = seed.problems
    assert problem.where == f"{srv.url}/seedmeta-data"
    assert "404" in problem.message and "trailing '/'" in problem.message


def test_file_seed_url_and_plain_path(tmp_path):
    write_seed_dir(tmp_path / "local", {"meta-data": "instance-id: f\n", "user-data": USER_DATA})
    a = discover(isolated_config(tmp_path, f"seedfrom=file://{tmp_path}/local/"))
    b = discover(isolated_config(tmp_path, f"ds=nocloud;s={tmp_path}/local/"))
    assert (a.instance_id, b.instance_id) == ("f", "f")
    assert a.payloads["user-data"] == USER_DATA


def test_broken_seed_url_falls_back_to_local_dir_and_reports(tmp_path):
    cfg = isolated_config(tmp_path, "bootseed.seed=http://127.0.0.1:9/seed/",
                          request_timeout=0.5)
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                   {"meta-data": "instance-id: local\n"})
    seed = discover(cfg)
    assert seed.instance_id == "local"
    assert any(p.where == "http://127.0.0.1:9/seed/meta-data" and "refused" in p.message
               for p in seed.problems)
    assert [t.outcome for t in seed.timings if t.name == "nocloud-url"] == ["error"]


def test_local_seedfrom_redirects_to_url(tmp_path):
    write_seed_dir(tmp_path / "www", {"meta-data": "instance-id: remote\nlocal-hostname: r\n",
                                      "user-data": USER_DATA})
    with StaticServer(tmp_path / "www") as srv:
        write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                       {"meta-data": f"seedfrom: {srv.url}/\nlocal-hostname: local\n",
                        "vendor-data": "#cloud-config\n"})
        seed = discover(isolated_config(tmp_path))
    assert seed.instance_id == "remote"
    assert seed.metadata["local-hostname"] == "local"
    assert seed.payloads["user-data"] == USER_DATA
    assert seed.found["vendor-data"].endswith("nocloud/vendor-data")
    assert "->" in (seed.location or "")


def test_found_seed_round_trips_through_the_cache(tmp_path):
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                   {"meta-data": "instance-id: c\n", "user-data": USER_DATA})
    seed = discover(isolated_config(tmp_path))
    manifest = write_seed_cache(seed, tmp_path / "run")
    doc = json.loads(manifest.read_text())
    assert doc["source"] == "nocloud" and doc["payloads"] == {"meta-data": 15,
                                                               "user-data": len(USER_DATA)}
    again = read_seed_cache(tmp_path / "run")
    assert again is not None and again.payloads == seed.payloads
    assert (manifest.parent.stat().st_mode & 0o777) == 0o700


def test_datasource_none_finds_nothing_even_with_a_seed_dir(tmp_path):
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud", {"meta-data": "a: b\n"})
    seed = discover(isolated_config(tmp_path, "bootseed.ds=none"))
    assert seed.source == "none"
