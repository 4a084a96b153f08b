"""IPv6 on the cache network: prefixes and the addresses a port's MAC gives it (pure).

A port's IPv6 addresses are never allocated: each is the modified EUI-64 of its
stable MAC (RFC 4291 appendix A), what a guest's kernel computes by SLAAC from
the prefix the cache network's router advertisements announce, and how Neutron
addresses SLAAC ports. Two ports have different MACs, so they can never collide.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

SLAAC_PREFIXLEN = 64  # SLAAC forms an address from a /64 and a 64-bit interface id
LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")
# Address space no cache prefix may touch (beside multicast and link-local, see prefix_problem).
_UNUSABLE_PREFIXES = {
    ipaddress.IPv6Network("::/8"): "reserved (loopback, unspecified, IPv4-mapped)",
    ipaddress.IPv6Network("fec0::/10"): "deprecated site-local",
}


def interface_id(mac: str) -> int:
    """The modified EUI-64 interface identifier of a 48-bit MAC (its lower 64 bits).

    ff:fe goes into the middle and the universal/local bit (0x02 of the first
    octet) is flipped, as the Linux kernel does (addrconf_ifid_eui48).
    """
    octets = bytes(int(part, 16) for part in mac.split(":"))
    if len(octets) != 6:
        raise ValueError(f"{mac!r} is not a 48-bit MAC address")
    eui64 = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:6]
    return int.from_bytes(eui64, "big")


def eui64_address(prefix: ipaddress.IPv6Network, mac: str) -> ipaddress.IPv6Address:
    """The address SLAAC gives the NIC with ``mac`` in the /64 ``prefix``."""
    if prefix.prefixlen != SLAAC_PREFIXLEN:
        raise ValueError(f"prefix {prefix} is not a /{SLAAC_PREFIXLEN}")
    return ipaddress.IPv6Address(int(prefix.network_address) | interface_id(mac))


def link_local_address(mac: str) -> ipaddress.IPv6Address:
    """The fe80:: address the kernel gives the NIC with ``mac`` (addr_gen_mode eui64)."""
    return eui64_address(LINK_LOCAL, mac)


def port_addresses(
    mac: str, prefixes: Sequence[ipaddress.IPv6Network]
) -> tuple[ipaddress.IPv6Address, ...]:
    """The port's EUI-64 address in each of ``prefixes``, in their order."""
    return tuple(eui64_address(prefix, mac) for prefix in prefixes)


def stored_address(
    mac: str, prefixes: Sequence[ipaddress.IPv6Network]
) -> ipaddress.IPv6Address | None:
    """The IPv6 address the port store records for a port (its address in the first
    prefix of the pool), None on a pool without IPv6."""
    return eui64_address(prefixes[0], mac) if prefixes else None


def allowed_sources(
    mac: str, prefixes: Sequence[ipaddress.IPv6Network]
) -> tuple[ipaddress.IPv6Address, ...]:
    """The IPv6 source (and neighbour advertisement target) addresses port security lets
    an instance use: its EUI-64 address in each prefix and its link-local address.
    Empty on a pool without IPv6 (the cache network then carries no IPv6 at all)."""
    if not prefixes:
        return ()
    return (*port_addresses(mac, prefixes), link_local_address(mac))


def mac_of(address: ipaddress.IPv6Address) -> str | None:
    """The MAC whose modified EUI-64 ``address`` ends with; None for another identifier."""
    identifier = (int(address) & (1 << 64) - 1).to_bytes(8, "big")
    if identifier[3:5] != b"\xff\xfe":
        return None
    octets = bytes([identifier[0] ^ 0x02]) + identifier[1:3] + identifier[5:8]
    return ":".join(f"{octet:02x}" for octet in octets)


def prefix_problem(prefix: ipaddress.IPv6Network) -> str | None:
    """Why ``prefix`` cannot be a cache prefix (None when it can)."""
    if prefix.prefixlen != SLAAC_PREFIXLEN:
        return (
            f"subnet {prefix} is an IPv6 prefix of length /{prefix.prefixlen}: "
            f"SLAAC needs a /{SLAAC_PREFIXLEN}"
        )
    if prefix.is_multicast:
        return f"subnet {prefix} is IPv6 multicast (ff00::/8): use a unique local or global prefix"
    if prefix.is_link_local:
        return (
            f"subnet {prefix} is IPv6 link-local (fe80::/10): every NIC has one already; "
            "use a unique local (fd00::/8) or global prefix"
        )
    for unusable, kind in _UNUSABLE_PREFIXES.items():
        if prefix.overlaps(unusable):
            return (
                f"subnet {prefix} overlaps the {kind} range {unusable}: "
                "use a unique local (fd00::/8) or global prefix"
            )
    return None
