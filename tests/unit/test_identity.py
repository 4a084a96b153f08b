import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachenet.errors import IdentityError
from cachenet.identity import (
    canonical_mac,
    canonical_uuid,
    check_device,
    check_host,
    check_stored_mac,
    check_stored_uuid,
    device_name,
    device_names,
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


def test_colliding_uuids_have_distinct_deterministic_alternative_device_names():
    first = list(
        itertools.islice(device_names("cache-", "01890a5d-ac96-7000-8000-000000000001"), 3)
    )
    second = list(
        itertools.islice(device_names("cache-", "01890a5d-ac97-7000-8000-000000000002"), 3)
    )
    assert first[0] == second[0] == "cache-01890a5da"
    assert len(set(first + second)) == 5  # only the leading name is shared
    assert all(len(name) == 15 and check_device(name) for name in first + second)
    again = itertools.islice(device_names("cache-", "01890A5D-AC96-7000-8000-000000000001"), 3)
    assert list(again) == first


@pytest.mark.parametrize("name", ["cache-0123abcd", "vm_1", "A-b_9", "x" * 15])
def test_legal_device_names(name):
    assert check_device(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 16, "-x", "_x", "a b", "a,b", "a\nb", "a\n", "a/b", "a:b", "é", "vm+", ".."]
)
def test_device_names_neither_linux_nor_dnsmasq_accepts_are_refused(name):
    with pytest.raises(IdentityError, match="device name"):
        check_device(name)


@pytest.mark.parametrize("host", ["", "x" * 256, "a\nb", "a\x1b[31mb", "a\x00", "a\tb", "a\u200bb"])
def test_hosts_that_are_empty_too_long_or_not_printable_are_refused(host):
    with pytest.raises(IdentityError, match="is not a host name") as caught:
        check_host(host)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_hosts_of_up_to_255_printable_characters_are_accepted():
    assert check_host("compute-1.example.org") == "compute-1.example.org"
    assert check_host("h" * 255) == "h" * 255


@pytest.mark.parametrize("mac", ["FA:17:3E:00:00:01", "fa:17:3e:0:0:1", "fb:17:3e:00:00:01", ""])
def test_stored_macs_must_be_canonical_and_unicast(mac):
    with pytest.raises(IdentityError):
        check_stored_mac(mac)


def test_stored_uuids_must_be_canonical():
    assert check_stored_uuid("01890a5d-ac96-7000-8000-000000000001")
    for text in ("../../outside/pwned", "01890A5D-AC96-7000-8000-000000000001", " x"):
        with pytest.raises(IdentityError, match="not a UUID in canonical form"):
            check_stored_uuid(text)
