import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachenet.settings import make_settings
from cachenet.store.addresses import address_at


def all_allocatable(settings):
    excluded = settings.excluded_ranges
    return [a for a in settings.subnet if not any(a in r for r in excluded)]


def test_index_skips_network_broadcast_and_reserved():
    settings = make_settings(subnet="10.0.0.0/28", reserved=["10.0.0.1", "10.0.0.4-10.0.0.6"])
    expected = all_allocatable(settings)
    assert [address_at(settings, i) for i in range(settings.allocatable_count)] == expected
    assert expected[0] == ipaddress.IPv4Address("10.0.0.2")
    with pytest.raises(IndexError):
        address_at(settings, settings.allocatable_count)


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 8)), max_size=6))
def test_index_matches_a_walk_of_the_subnet(spans):
    reserved = [f"10.1.0.{a}-10.1.0.{min(a + n, 63)}" for a, n in spans]
    settings = make_settings(subnet="10.1.0.0/26", reserved=reserved)
    expected = all_allocatable(settings)
    assert len(expected) == settings.allocatable_count
    assert [address_at(settings, i) for i in range(len(expected))] == expected


def test_a_slash_8_maps_its_last_index_directly():
    settings = make_settings(subnet="10.0.0.0/8", reserved=["10.0.0.1-10.0.0.255"])
    assert address_at(settings, settings.allocatable_count - 1) == ipaddress.IPv4Address(
        "10.255.255.254"
    )
