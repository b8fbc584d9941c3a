import socket

from bootseed.early.discover import DiscoveryConfig, discover
from bootseed.image_builder.mocks.imds import MockImds
from bootseed.image_builder.mocks.static import StaticServer

from .seedhelpers import isolated_config, make_dmi, write_seed_dir

CC = b"#cloud-config\npackages: [htop]\n"


class ExplodingFinder:
    name = "exploding"

    def scan(self):
        raise RuntimeError("boom")


class CountingFinder:
    name = "counting"

    def __init__(self):
        self.calls = 0

    def scan(self):
        self.calls += 1
        return []


def test_off_cloud_no_seed_touches_no_network(tmp_path):
    finder = CountingFinder()
    with MockImds({"instance-id": "i-x"}) as imds:
        cfg = isolated_config(tmp_path, "quiet splash", scan_discs=True, blockdev_finder=finder,
                              ec2_endpoints=[imds.url], total_budget=None)
        seed = discover(cfg)
        assert imds.requests == []
    assert seed.source == "none" and seed.problems == []
    assert finder.calls == 1
    assert [t.name for t in seed.timings] == ["blockdev-scan", "dmi", "discover"]


def test_discover_never_raises(tmp_path):
    cfg = isolated_config(tmp_path, scan_discs=True, blockdev_finder=ExplodingFinder())
    seed = discover(cfg)
    assert seed.source == "none"
    assert any("internal error: RuntimeError: boom" in p.message for p in seed.problems)


def test_cmdline_problems_reach_the_seed(tmp_path):
    seed = discover(isolated_config(tmp_path, "bootseed.timeout=x"))
    assert [p.where for p in seed.problems] == ["kernel command line: bootseed.timeout=x"]


def test_cloud_config_url_alone_is_a_seed(tmp_path):
    write_seed_dir(tmp_path / "www", {"cc": CC})
    with StaticServer(tmp_path / "www") as srv:
        seed = discover(isolated_config(tmp_path, f"cloud-config-url={srv.url}/cc"))
        again = discover(isolated_config(tmp_path, f"cloud-config-url={srv.url}/cc"))
    assert seed.source == "cmdline"
    assert seed.payloads == {"vendor-data": CC}
    assert seed.instance_id and seed.instance_id.startswith("iid-cmdline-")
    assert again.instance_id == seed.instance_id


def test_cloud_config_url_joins_another_seed_as_vendor_data(tmp_path):
    write_seed_dir(tmp_path / "root/var/lib/bootseed/seed/nocloud",
                   {"meta-data": "instance-id: d\n", "user-data": "#cloud-config\n"})
    write_seed_dir(tmp_path / "www", {"cc": CC, "bad": b"packages: []\n"})
    with StaticServer(tmp_path / "www") as srv:
        seed = discover(isolated_config(tmp_path, f"cloud-config-url={srv.url}/cc"))
        bad = discover(isolated_config(tmp_path, f"cloud-config-url={srv.url}/bad"))
    assert seed.source == "nocloud" and seed.payloads["vendor-data"] == CC
    assert seed.found["vendor-data"] == f"{srv.url}/cc"
    assert "vendor-data" not in bad.payloads
    assert any("#cloud-config" in p.message for p in bad.problems)


def test_budget_exhaustion_is_reported(tmp_path):
    # A listener that accepts and never answers: every request waits for its deadline.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        port = sock.getsockname()[1]
        cfg = isolated_config(tmp_path, f"bootseed.seed=http://127.0.0.1:{port}/s/",
                              total_budget=0.8, request_timeout=5.0)
        seed = discover(cfg)
    finally:
        sock.close()
    assert seed.source == "none"
    assert any("time budget of 0.8s used up" in p.message for p in seed.problems)
    assert any("no complete answer" in p.message for p in seed.problems)


def test_from_system_reads_proc_cmdline(tmp_path):
    cfg = DiscoveryConfig.from_system("/")
    with open("/proc/cmdline") as handle:
        assert cfg.cmdline == handle.read()
    assert cfg.scan_discs and cfg.dmi_dir == "/sys/class/dmi/id"
    assert DiscoveryConfig.from_system(cmdline="ds=ec2").cmdline == "ds=ec2"


def test_another_root_is_a_target_not_this_machine(tmp_path):
    # Its command line and DMI come from under it; the host's discs are not its discs.
    cfg = DiscoveryConfig.from_system(tmp_path)
    assert cfg.root == str(tmp_path) and cfg.cmdline == ""
    assert cfg.dmi_dir == f"{tmp_path}/sys/class/dmi/id" and not cfg.scan_discs
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cmdline").write_text("ds=nocloud;s=/seed/\n")
    assert DiscoveryConfig.from_system(tmp_path).cmdline == "ds=nocloud;s=/seed/\n"


def test_dmi_helper_fields(tmp_path):
    from bootseed.early.dmi import read_dmi

    info = read_dmi(make_dmi(tmp_path, sys_vendor="Amazon EC2", board_asset_tag="i-0abc"))
    assert info.is_ec2 and info.board_asset_tag == "i-0abc"
    assert not read_dmi(str(tmp_path / "none")).is_ec2
