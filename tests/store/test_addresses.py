import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachenet.settings import make_settings
from cachenet.store.addresses import AddressPool, SubnetSpace, parse_address_range, subnet_of


def only_space(**overrides):
    (space,) = AddressPool.from_settings(make_settings(**overrides).network).spaces
    return space


def all_allocatable(space, reserved):
    subnet = space.subnet
    edges = (subnet.network_address, subnet.broadcast_address)
    return [a for a in subnet if a not in edges and not any(a in r for r in reserved)]


def test_index_skips_network_broadcast_and_reserved():
    settings = make_settings(subnet="10.0.0.0/28", reserved=["10.0.0.1", "10.0.0.4-10.0.0.6"])
    (space,) = AddressPool.from_settings(settings.network).spaces
    expected = all_allocatable(space, settings.network.reserved)
    assert [space.address_at(i) for i in range(space.size)] == expected
    assert expected[0] == ipaddress.IPv4Address("10.0.0.2")
    with pytest.raises(IndexError):
        space.address_at(space.size)


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 8)), max_size=6))
def test_index_matches_a_walk_of_the_subnet(spans):
    reserved = [f"10.1.0.{a}-10.1.0.{min(a + n, 63)}" for a, n in spans]
    settings = make_settings(subnet="10.1.0.0/26", reserved=reserved)
    (space,) = AddressPool.from_settings(settings.network).spaces
    expected = all_allocatable(space, settings.network.reserved)
    assert len(expected) == space.size
    assert [space.address_at(i) for i in range(len(expected))] == expected


def test_a_slash_8_maps_its_last_index_directly():
    space = only_space(subnet="10.0.0.0/8", reserved=["10.0.0.1-10.0.0.255"])
    assert space.address_at(space.size - 1) == ipaddress.IPv4Address("10.255.255.254")


def test_each_subnet_of_a_pool_keeps_the_reserved_ranges_inside_it():
    settings = make_settings(
        subnet="10.0.0.0/29, 192.168.5.0/30", reserved=["10.0.0.1-10.0.0.2", "192.168.5.1"]
    )
    pool = AddressPool.from_settings(settings.network)
    first, second = pool.spaces
    assert [str(first.address_at(i)) for i in range(first.size)] == [
        "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6",
    ]  # fmt: skip
    assert [str(second.address_at(i)) for i in range(second.size)] == ["192.168.5.2"]
    assert pool.size == 5
    assert str(pool) == "pool 10.0.0.0/29, 192.168.5.0/30"
    assert pool.space_of(ipaddress.IPv4Address("192.168.5.3")) == second
    assert not pool.is_host(ipaddress.IPv4Address("192.168.5.3"))  # its broadcast address
    assert not pool.is_allocatable(ipaddress.IPv4Address("192.168.5.1"))  # reserved
    assert pool.is_host(ipaddress.IPv4Address("192.168.5.1"))
    assert pool.space_of(ipaddress.IPv4Address("10.0.0.8")) is None


def test_a_port_gets_its_own_subnets_netmask():
    settings = make_settings(subnet="10.0.0.0/24,10.8.0.0/16")
    assert subnet_of(settings.network, ipaddress.IPv4Address("10.8.3.4")).netmask == (
        ipaddress.IPv4Address("255.255.0.0")
    )
    assert subnet_of(settings.network, ipaddress.IPv4Address("10.0.0.9")).prefixlen == 24
    with pytest.raises(ValueError):
        subnet_of(settings.network, ipaddress.IPv4Address("10.9.0.1"))


def test_an_adjacent_reserved_range_merges_with_the_broadcast_address():
    space = SubnetSpace.of(
        ipaddress.IPv4Network("10.0.0.0/29"),
        [parse_address_range("10.0.0.5-10.0.0.6")],
    )
    assert [str(r) for r in space.exclusions] == ["10.0.0.0", "10.0.0.5-10.0.0.7"]
    assert space.size == 4
