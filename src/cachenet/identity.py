"""Port identity: MAC addresses and host device names (pure functions).

The recipe formatted octets with ``format(randint(0, 255), 'x')``, which
writes ``fa:17:3e:a:5:ff``; here every MAC is canonical: six octets, two
lower-case hex digits each. Device names are derived from the instance UUID,
so the same instance always gets the same name, and fit Linux's 15 characters.
"""

from __future__ import annotations

import re
import uuid

from cachenet.errors import IdentityError

IFNAMSIZ_MAX = 15  # Linux IFNAMSIZ (16) minus the terminating NUL
DEVICE_SUFFIX_MIN = 8  # hex digits of the instance UUID kept in a device name (32 bits)
MAC_OCTETS = 6

_OCTET = re.compile(r"^[0-9a-fA-F]{1,2}$")


def parse_mac_octets(text: str) -> tuple[int, ...]:
    """Octets of a colon- or dash-separated MAC (or MAC prefix) string."""
    parts = re.split(r"[:-]", text.strip())
    if not all(_OCTET.match(p) for p in parts):
        raise IdentityError(f"{text!r} is not a MAC address or prefix (hex octets split by ':')")
    return tuple(int(p, 16) for p in parts)


def format_mac(octets: tuple[int, ...] | list[int]) -> str:
    """Canonical form: two lower-case hex digits per octet, joined by ':'."""
    return ":".join(f"{o:02x}" for o in octets)


def canonical_mac(text: str) -> str:
    """A full MAC address in canonical form; rejects anything but six octets."""
    octets = parse_mac_octets(text)
    if len(octets) != MAC_OCTETS:
        raise IdentityError(f"{text!r} has {len(octets)} octets, a MAC address has 6")
    return format_mac(octets)


def parse_mac_prefix(text: str) -> str:
    """Validate a MAC prefix (1 to 5 octets, unicast) and return it canonical."""
    octets = parse_mac_octets(text)
    if not 1 <= len(octets) <= MAC_OCTETS - 1:
        raise IdentityError(f"{text!r} has {len(octets)} octets, a prefix has 1 to 5")
    if octets[0] & 0x01:
        raise IdentityError(
            f"{text!r} is a multicast prefix (lowest bit of the first octet set); "
            "a NIC's MAC must be unicast"
        )
    return format_mac(octets)


def suffix_bits(mac_prefix: str) -> int:
    """How many bits of a MAC are left after ``mac_prefix``."""
    return 8 * (MAC_OCTETS - len(parse_mac_octets(mac_prefix)))


def mac_from_suffix(mac_prefix: str, suffix: int) -> str:
    """The MAC made of ``mac_prefix`` followed by ``suffix`` as big-endian octets."""
    prefix = parse_mac_octets(mac_prefix)
    free = MAC_OCTETS - len(prefix)
    if not 0 <= suffix < 1 << (8 * free):
        raise IdentityError(f"MAC suffix {suffix} does not fit in {free} octets")
    return format_mac(prefix + tuple(suffix.to_bytes(free, "big")))


def mac_suffix(mac_prefix: str, mac: str) -> int:
    """Inverse of ``mac_from_suffix``; raises if ``mac`` is not under ``mac_prefix``."""
    prefix, octets = parse_mac_octets(mac_prefix), parse_mac_octets(canonical_mac(mac))
    if octets[: len(prefix)] != prefix:
        raise IdentityError(f"MAC {mac} is not under the prefix {mac_prefix}")
    return int.from_bytes(bytes(octets[len(prefix) :]), "big")


def has_mac_prefix(mac: str, mac_prefix: str) -> bool:
    """Whether ``mac`` starts with ``mac_prefix`` (any spelling of either)."""
    try:
        octets, prefix = parse_mac_octets(mac), parse_mac_octets(mac_prefix)
    except IdentityError:
        return False
    return octets[: len(prefix)] == prefix


def canonical_uuid(text: str) -> str:
    """An instance UUID in canonical lower-case dashed form."""
    try:
        return str(uuid.UUID(str(text).strip()))
    except ValueError as exc:
        raise IdentityError(f"{text!r} is not a UUID") from exc


def device_name(device_prefix: str, instance_uuid: str) -> str:
    """Host-side device name of an instance's cache NIC: prefix + leading UUID hex digits.

    Stable for an instance, at most 15 characters. Like Nova's ``tap<port-id[:11]>``
    it keeps as many digits as fit; settings guarantee at least 8.
    """
    room = IFNAMSIZ_MAX - len(device_prefix)
    if room < DEVICE_SUFFIX_MIN:
        raise IdentityError(
            f"device prefix {device_prefix!r} leaves {room} characters, {DEVICE_SUFFIX_MIN} needed"
        )
    return device_prefix + uuid.UUID(canonical_uuid(instance_uuid)).hex[:room]
