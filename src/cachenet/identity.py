"""Port identity: MAC addresses and host device names (pure functions).

The recipe formatted octets with ``format(randint(0, 255), 'x')``, which
writes ``fa:17:3e:a:5:ff``; here every MAC is canonical: six octets, two
lower-case hex digits each. Device names are derived from the instance UUID,
so the same instance always gets the same name, and fit Linux's 15 characters.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Iterator

from cachenet.errors import IdentityError

IFNAMSIZ_MAX = 15  # Linux IFNAMSIZ (16) minus the terminating NUL
DEVICE_SUFFIX_MIN = 8  # hex digits of the instance UUID kept in a device name (32 bits)
MAC_OCTETS = 6
HOST_MAX = 255  # characters of a compute host's name (the store's column)

# A device name is also the host name dnsmasq hands out with the lease, written
# into a dhcp-host line: letters, digits, '-' and '_' (never first), as
# dnsmasq's legal_hostname() accepts; no ',', newline or space can end the line.
_DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

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


def device_names(device_prefix: str, instance_uuid: str) -> Iterator[str]:
    """``device_name``, then deterministic alternatives for when another instance holds it.

    The store keeps the first free one in the instance's row, so it stays the
    instance's name whatever is allocated later.
    """
    yield device_name(device_prefix, instance_uuid)
    yield from alternative_device_names(device_prefix, canonical_uuid(instance_uuid))


def alternative_device_names(device_prefix: str, key: str) -> Iterator[str]:
    """prefix + hex digits of sha256(key/n) for n = 1, 2, ...: as long as ``device_name``."""
    room = IFNAMSIZ_MAX - len(device_prefix)
    for n in itertools.count(1):
        yield device_prefix + hashlib.sha256(f"{key}/{n}".encode()).hexdigest()[:room]


def check_device(name: str) -> str:
    """``name`` if it can be a Linux interface name and a dnsmasq host name."""
    if not _DEVICE_NAME.fullmatch(name) or len(name.encode()) > IFNAMSIZ_MAX:
        raise IdentityError(
            f"device name {shown(name)} is not 1 to {IFNAMSIZ_MAX} letters, digits, '-' or '_' "
            "(not first)"
        )
    return name


def host_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a compute host in the port store, or None."""
    if not name:
        return "empty"
    if len(name) > HOST_MAX:
        return f"{len(name)} characters, at most {HOST_MAX}"
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        return "contains whitespace or control characters"
    return None


def check_host(host: str) -> str:
    """``host`` if it can name a compute host (see ``host_name_problem``)."""
    problem = host_name_problem(host)
    if problem:
        raise IdentityError(f"host {shown(host)} is not a host name: {problem}")
    return host


def check_stored_mac(mac: str) -> str:
    """``mac`` if it is a canonical unicast MAC address (what the store hands out)."""
    try:
        canonical = canonical_mac(mac)
    except IdentityError:
        canonical = None
    if canonical != mac:
        raise IdentityError(f"MAC {shown(mac)} is not canonical (six lower-case hex pairs)")
    if parse_mac_octets(mac)[0] & 0x01:
        raise IdentityError(f"MAC {shown(mac)} is multicast")
    return mac


def check_stored_uuid(text: str) -> str:
    """``text`` if it is an instance UUID in canonical form."""
    try:
        canonical = canonical_uuid(text)
    except IdentityError:
        canonical = None
    if canonical != text:
        raise IdentityError(f"{shown(text)} is not a UUID in canonical form")
    return text


def shown(text: object, limit: int = 40) -> str:
    """``text`` quoted for a message or log line: one line, control characters escaped, short."""
    value = str(text)
    return repr(value[:limit]) + ("..." if len(value) > limit else "")


def linux_ifname_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name (the kernel's dev_valid_name), or None.

    The kernel counts bytes, not characters; anything but printable ASCII is
    refused too, as the tools around a bridge (dnsmasq, libvirt, OVS) are not
    all safe with it.
    """
    if not name:
        return "empty"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > IFNAMSIZ_MAX:
        return f"{size} bytes, at most {IFNAMSIZ_MAX}"
    if not (name.isascii() and name.isprintable()):
        return "only printable ASCII characters are allowed"
    if name in (".", ".."):
        return "reserved name"
    if re.search(r"[/:\s]", name):
        return "contains '/', ':' or whitespace"
    return None
