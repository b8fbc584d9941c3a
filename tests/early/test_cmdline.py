from bootseed.early.cmdline import parse, split_params


def test_split_respects_quotes_and_stops_at_double_dash():
    params = split_params('ro quiet  a="b c" x= flag -- init=arg ds=ec2\n')
    assert params == [("ro", None), ("quiet", None), ("a", "b c"), ("x", ""), ("flag", None)]


def test_nocloud_short_fields():
    args = parse("root=/dev/vda1 ds=nocloud;s=http://10.0.2.2:8000/seed/;i=iid-7;h=box ro")
    assert args.datasource == "nocloud"
    assert args.seed_url == "http://10.0.2.2:8000/seed/"
    assert args.seed_url_param == "ds=nocloud;s"
    assert args.instance_id == "iid-7"
    assert args.hostname == "box"
    assert args.problems == []


def test_nocloud_net_long_fields_and_case():
    args = parse("ds=NoCloud-Net;seedfrom=file:///seed/;instance-id=a;local-hostname=b")
    assert (args.datasource, args.seed_url, args.instance_id, args.hostname) == (
        "nocloud", "file:///seed/", "a", "b")


def test_bootseed_namespace():
    args = parse("bootseed.seed=https://h/x/ bootseed.ds=ec2 bootseed.timeout=7.5 bootseed.debug")
    assert args.seed_url == "https://h/x/"
    assert args.datasource == "ec2"
    assert args.timeout == 7.5
    assert args.debug is True
    assert parse("bootseed.debug=0").debug is False


def test_top_level_seedfrom_and_cloud_config_url():
    args = parse("seedfrom=/var/tmp/seed/ cloud-config-url=http://h/cc.yaml")
    assert args.seed_url == "/var/tmp/seed/"
    assert args.cloud_config_url == "http://h/cc.yaml"


def test_last_occurrence_wins():
    assert parse("bootseed.ds=ec2 bootseed.ds=ovf").datasource == "ovf"


def test_bad_values_are_problems_naming_the_parameter_and_the_rest_applies():
    args = parse("bootseed.timeout=abc bootseed.ds=azure ds=nocloud;s=ftp://h/;q=1;i=ok "
                 "cloud-config-url=relative bootseed.debug")
    wheres = [p.where for p in args.problems]
    assert "kernel command line: bootseed.timeout=abc" in wheres
    assert "kernel command line: bootseed.ds=azure" in wheres
    assert any("ftp://h/" in w for w in wheres)
    assert any("q=1" in p.message for p in args.problems)
    assert "kernel command line: cloud-config-url=relative" in wheres
    assert args.timeout is None
    assert args.seed_url is None
    assert args.instance_id == "ok"
    assert args.datasource == "nocloud"
    assert args.debug is True


def test_timeout_range():
    assert parse("bootseed.timeout=0").timeout is None
    assert parse("bootseed.timeout=601").timeout is None
    assert parse("bootseed.timeout=600").timeout == 600.0


def test_ds_fields_only_for_nocloud():
    args = parse("ds=ec2;s=http://h/")
    assert args.datasource == "ec2"
    assert args.seed_url is None
    assert args.problems and "only applies to ds=nocloud" in args.problems[0].message
