"""The ip= kernel parameter in its kernel/klibc and dracut dialects."""

from __future__ import annotations

import pytest
from bootseed.early.ipconfig import IpConfig, IpConfigError, parse_ip, select_ip


@pytest.mark.parametrize("value", ["dhcp", "on", "any", "bootp", "DHCP"])
def test_short_dhcp_words(value: str) -> None:
    assert parse_ip(value) == IpConfig(method="dhcp", raw=value)


@pytest.mark.parametrize("value", ["off", "none"])
def test_short_off_words(value: str) -> None:
    assert parse_ip(value).method == "off"


def test_kernel_long_form_static() -> None:
    cfg = parse_ip("192.0.2.10:192.0.2.1:192.0.2.1:255.255.255.0:web1:ens3:off:192.0.2.53:"
                   "192.0.2.54")
    assert cfg.method == "static"
    assert cfg.cidr == "192.0.2.10/24"
    assert (cfg.gateway, cfg.hostname, cfg.device) == ("192.0.2.1", "web1", "ens3")
    assert cfg.dns == ("192.0.2.53", "192.0.2.54")


def test_prefix_length_netmask_and_no_gateway() -> None:
    cfg = parse_ip("10.1.2.3:::16::eth1:none")
    assert (cfg.cidr, cfg.gateway, cfg.device) == ("10.1.2.3/16", None, "eth1")


def test_long_form_dhcp_on_named_device() -> None:
    cfg = parse_ip("::::box:eth2:dhcp")
    assert (cfg.method, cfg.device, cfg.hostname) == ("dhcp", "eth2", "box")


def test_long_form_without_client_and_autoconf_means_dhcp() -> None:
    assert parse_ip(":::::eth0").method == "dhcp"


def test_dracut_device_form_with_mtu() -> None:
    cfg = parse_ip("ens5:dhcp:9001")
    assert (cfg.method, cfg.device, cfg.mtu) == ("dhcp", "ens5", 9001)


def test_dracut_long_form_with_mtu_and_mac() -> None:
    cfg = parse_ip("192.0.2.7::192.0.2.1:24:h:eth0:none:1400:52:54:00:12:34:56")
    assert (cfg.cidr, cfg.mtu, cfg.dns) == ("192.0.2.7/24", 1400, ())


@pytest.mark.parametrize(("value", "message"), [
    ("192.0.2.300::192.0.2.1:255.255.255.0::eth0:off",
     "field 1 (client address) '192.0.2.300' is not an IP address"),
    ("192.0.2.3::192.0.2.1:255.0.255.0::eth0:off", "field 4 (netmask) '255.0.255.0'"),
    ("192.0.2.3::192.0.2.1:::eth0:off", "field 4 (netmask) is required"),
    ("192.0.2.3::198.51.100.1:24::eth0:off", "field 3 (gateway) 198.51.100.1 is outside"),
    ("192.0.2.3:::24::eth0:static", "field 7 (autoconf) 'static'"),
    ("eth0:dhcp6", "dhcp6 is not supported"),
    ("auto6", "auto6 is not supported"),
    ("[2001:db8::2]::[2001:db8::1]:64::eth0:none", "only IPv4"),
    ("ens5:dhcp:12", "mtu '12'"),
])
def test_bad_values_name_the_field(value: str, message: str) -> None:
    with pytest.raises(IpConfigError) as info:
        parse_ip(value)
    assert message in str(info.value)
    assert str(info.value).startswith(f"ip={value}")


def test_select_takes_the_last_usable_value_and_reports_the_rest() -> None:
    chosen, errors = select_ip(["dhcp", "bogus:1:2:3:4:5:wat", "10.0.0.2:::8::eth0:off"])
    assert chosen is not None and chosen.cidr == "10.0.0.2/8"
    assert len(errors) == 1 and "field 7 (autoconf) 'wat'" in errors[0]
