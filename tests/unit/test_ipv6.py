"""Modified EUI-64 addresses from MACs, and which prefixes a pool may hold."""

import ipaddress

import pytest

from cachenet import ipv6
from cachenet.errors import ConfigError
from cachenet.port import Port
from cachenet.settings import make_settings

# What `ip -6 addr` showed for veths given these MACs (Linux 6.1, addr_gen_mode eui64).
KERNEL_LINK_LOCAL = {
    "fa:17:3e:12:34:56": "fe80::f817:3eff:fe12:3456",
    "00:16:3e:ab:cd:ef": "fe80::216:3eff:feab:cdef",
}


@pytest.mark.parametrize(("mac", "expected"), KERNEL_LINK_LOCAL.items())
def test_link_local_address_is_the_kernels(mac, expected):
    assert ipv6.link_local_address(mac) == ipaddress.IPv6Address(expected)


def test_rfc4291_example_flips_the_universal_local_bit():
    # RFC 4291 appendix A: 34-56-78-9A-BC-DE gives the identifier 3656:78ff:fe9a:bcde.
    assert ipv6.interface_id("34:56:78:9a:bc:de") == 0x365678FFFE9ABCDE


def test_eui64_address_puts_the_identifier_in_the_prefix():
    prefix = ipaddress.IPv6Network("fd00:99::/64")
    assert ipv6.eui64_address(prefix, "fa:17:3e:00:00:01") == ipaddress.IPv6Address(
        "fd00:99::f817:3eff:fe00:1"
    )


def test_eui64_address_needs_a_64():
    with pytest.raises(ValueError, match="/64"):
        ipv6.eui64_address(ipaddress.IPv6Network("fd00::/48"), "fa:17:3e:00:00:01")


def test_distinct_macs_give_distinct_addresses():
    prefix = ipaddress.IPv6Network("fd00:99::/64")
    macs = [f"fa:17:3e:00:{i >> 8:02x}:{i & 0xFF:02x}" for i in range(512)]
    assert len({ipv6.eui64_address(prefix, mac) for mac in macs}) == len(macs)


def test_port_addresses_one_per_prefix_in_order():
    settings = make_settings(subnet="10.99.0.0/16, fd00:99::/64, 2001:db8:1::/64").network
    port = Port("u", "fa:17:3e:00:00:01", ipaddress.IPv4Address("10.99.0.5"), "cache-u", "h")
    assert port.ipv6_addresses(settings.ipv6_prefixes) == (
        ipaddress.IPv6Address("fd00:99::f817:3eff:fe00:1"),
        ipaddress.IPv6Address("2001:db8:1::f817:3eff:fe00:1"),
    )
    assert (
        ipv6.stored_address(port.mac, settings.ipv6_prefixes)
        == port.ipv6_addresses(settings.ipv6_prefixes)[0]
    )


def test_allowed_sources_add_the_link_local_address_only_with_ipv6():
    prefix = ipaddress.IPv6Network("fd00:99::/64")
    assert ipv6.allowed_sources("fa:17:3e:00:00:01", [prefix]) == (
        ipaddress.IPv6Address("fd00:99::f817:3eff:fe00:1"),
        ipaddress.IPv6Address("fe80::f817:3eff:fe00:1"),
    )
    assert ipv6.allowed_sources("fa:17:3e:00:00:01", []) == ()
    assert ipv6.stored_address("fa:17:3e:00:00:01", []) is None


def test_dual_stack_pool_keeps_ipv4_subnets_apart():
    settings = make_settings(subnet="10.99.0.0/16, fd00:99::/64")
    assert settings.network.subnets == (ipaddress.IPv4Network("10.99.0.0/16"),)
    assert settings.network.ipv6_prefixes == (ipaddress.IPv6Network("fd00:99::/64"),)
    assert settings.public_dict()["subnet"] == "10.99.0.0/16,fd00:99::/64"


def test_an_ipv4_pool_has_no_ipv6():
    assert make_settings().network.ipv6_prefixes == ()


def test_mac_of_reverses_eui64_and_knows_other_identifiers():
    prefix = ipaddress.IPv6Network("fd00:99::/64")
    assert ipv6.mac_of(ipv6.eui64_address(prefix, "fa:17:3e:00:00:01")) == "fa:17:3e:00:00:01"
    assert ipv6.mac_of(ipaddress.IPv6Address("fd00:99::1")) is None


def test_dnsmasq_announces_prefixes_only_on_a_dual_stack_pool():
    from cachenet.dhcp.server import dnsmasq_command  # the whole command: IPv4 part unchanged

    def command_of(**options):
        settings = make_settings(dhcp_interface="br0", **options)
        return dnsmasq_command(settings.dhcp, settings.network, "dnsmasq")

    ipv4_only = command_of()
    assert not [o for o in ipv4_only if o.startswith(("--enable-ra", "--ra-"))]
    command = command_of(subnet="10.99.0.0/16, fd00:99::/64", mtu=1400)
    assert command[: len(ipv4_only)] == ipv4_only  # IPv4 DHCP unchanged, the announcements after
    assert "--enable-ra" in command
    # every 300 s, router lifetime 0: no default route
    assert "--ra-param=br0,mtu:1400,300,0" in command
    assert "--dhcp-range=set:cachenet6-0,fd00:99::,ra-only,64,86400s" in command


def test_dnsmasq_serves_an_ipv6_only_pool_with_advertisements_alone():
    from cachenet.dhcp.server import dnsmasq_command

    settings = make_settings(dhcp_interface="br0", subnet="fd00:99::/64", mtu=1400)
    command = dnsmasq_command(settings.dhcp, settings.network, "dnsmasq")
    ranges = [o for o in command if o.startswith("--dhcp-range=")]
    assert ranges == ["--dhcp-range=set:cachenet6-0,fd00:99::,ra-only,64,86400s"]
    assert not [o for o in command if o.startswith(("--dhcp-option", "--dhcp-authoritative"))]
    assert "--enable-ra" in command and "--ra-param=br0,mtu:1400,300,0" in command


def test_an_ipv4_router_on_an_ipv6_only_pool_is_refused():
    with pytest.raises(ConfigError, match=r"dhcp_router 10\.99\.0\.1 is outside the IPv6-only"):
        make_settings(subnet="fd00:99::/64", dhcp_router="10.99.0.1")
