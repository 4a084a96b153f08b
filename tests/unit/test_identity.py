import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachenet.errors import IdentityError
from cachenet.identity import (
    canonical_mac,
    canonical_uuid,
    device_name,
    has_mac_prefix,
    mac_from_suffix,
    mac_suffix,
    parse_mac_prefix,
    suffix_bits,
)


def test_canonical_mac_pads_each_octet_to_two_digits():
    # The recipe's format(randint(0, 255), 'x') wrote fa:17:3e:a:5:ff.
    assert canonical_mac("fa:17:3e:a:5:ff") == "fa:17:3e:0a:05:ff"
    assert canonical_mac("FA-17-3E-0A-05-FF") == "fa:17:3e:0a:05:ff"


@pytest.mark.parametrize("bad", ["fa:17:3e:0a:05", "fa:17:3e:0a:05:ff:00", "zz:17:3e:0a:05:ff", ""])
def test_canonical_mac_rejects_malformed(bad):
    with pytest.raises(IdentityError):
        canonical_mac(bad)


def test_mac_from_suffix_fills_the_free_octets():
    assert mac_from_suffix("fa:17:3e", 0x0A05FF) == "fa:17:3e:0a:05:ff"
    assert mac_from_suffix("fa:17:3e:01", 1) == "fa:17:3e:01:00:01"
    with pytest.raises(IdentityError):
        mac_from_suffix("fa:17:3e", 1 << 24)


@given(st.integers(min_value=0, max_value=(1 << 24) - 1))
def test_mac_suffix_round_trips(suffix):
    mac = mac_from_suffix("fa:17:3e", suffix)
    assert canonical_mac(mac) == mac
    assert mac_suffix("fa:17:3e", mac) == suffix


def test_suffix_bits():
    assert suffix_bits("fa:17:3e") == 24
    assert suffix_bits("02") == 40


def test_prefix_must_be_unicast_and_1_to_5_octets():
    assert parse_mac_prefix("FA:17:3E") == "fa:17:3e"
    with pytest.raises(IdentityError, match="multicast"):
        parse_mac_prefix("01:00:5e")
    with pytest.raises(IdentityError, match="1 to 5"):
        parse_mac_prefix("fa:17:3e:00:00:01")


def test_has_mac_prefix_ignores_spelling():
    assert has_mac_prefix("FA:17:3E:0A:05:FF", "fa:17:3e")
    assert not has_mac_prefix("fa:16:3e:0a:05:ff", "fa:17:3e")
    assert not has_mac_prefix("not a mac", "fa:17:3e")


def test_device_name_is_stable_and_fits_ifnamsiz():
    uuid = "2A9F4C4E-5A0E-4D47-9C39-8E6A4D1F0B7A"
    name = device_name("cache-", uuid)
    assert name == "cache-2a9f4c4e5"
    assert len(name) == 15
    assert device_name("cache-", uuid.lower()) == name
    assert device_name("c", uuid) == "c2a9f4c4e5a0e4d"


def test_device_name_refuses_a_prefix_that_leaves_too_little_room():
    with pytest.raises(IdentityError):
        device_name("cachenet-", "2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a")


def test_canonical_uuid():
    assert canonical_uuid("2A9F4C4E5A0E4D479C398E6A4D1F0B7A") == (
        "2a9f4c4e-5a0e-4d47-9c39-8e6a4d1f0b7a"
    )
    with pytest.raises(IdentityError, match="not a UUID"):
        canonical_uuid("instance-1")
