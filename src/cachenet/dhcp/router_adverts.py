"""Router advertisements for the IPv6 prefixes of the pool (dnsmasq's options, pure).

With IPv6 prefixes in the pool, the dnsmasq of ``cachenet dhcp serve`` also
sends router advertisements for each of them (``ra-only``: no DHCPv6). Guests
form their EUI-64 address by SLAAC, the address ``cachenet.ipv6`` derives from
the port's MAC. The router lifetime is 0, so no guest takes a default route
through the cache network. Several serve nodes announce the same prefixes
without conflict: an announcement holds no state, a guest's address depends on
the prefix and its own MAC alone.
"""

from __future__ import annotations

import ipaddress

from cachenet import ipv6
from cachenet.errors import DhcpError
from cachenet.settings import DhcpSettings, NetworkSettings

# Seconds between unsolicited announcements (RFC 4861 allows 4 to 1800; a guest
# that solicits is answered at once).
RA_INTERVAL = 300
# The prefixes' valid and preferred lifetime in the announcements. Not the IPv4
# lease time (as short as 120 s), nor dnsmasq's default for ra-only (forever: a
# prefix taken off the pool would stay on every guest until it reboots). A day:
# guests keep their addresses through a day without any serve node.
PREFIX_LIFETIME = 86400  # seconds


def dnsmasq_options(dhcp: DhcpSettings, network: NetworkSettings) -> list[str]:
    """dnsmasq's options announcing the IPv6 prefixes (none on an IPv4-only pool).

    dnsmasq binds a range to the interface holding an address in its prefix
    (``check_own_addresses`` makes sure there is one), announced with
    PREFIX_LIFETIME. ``ra-param``: the MTU when set (else dnsmasq announces the
    interface's own), RA_INTERVAL, and a router lifetime of 0.
    """
    if not network.ipv6_prefixes:
        return []
    mtu = f"mtu:{network.mtu}," if network.mtu else ""
    return [
        "--enable-ra",
        *(
            f"--dhcp-range=set:cachenet6-{i},{prefix.network_address},ra-only,"
            f"{prefix.prefixlen},{PREFIX_LIFETIME}s"
            for i, prefix in enumerate(network.ipv6_prefixes)
        ),
        f"--ra-param={dhcp.interface},{mtu}{RA_INTERVAL},0",
    ]


def check_own_addresses(
    interface: str, own: list[ipaddress.IPv6Address], network: NetworkSettings
) -> None:
    """The interface has an address in each prefix, and none that an instance forms:
    the EUI-64 address of a MAC under ``mac_prefix``, in a prefix of the pool."""
    for prefix in network.ipv6_prefixes:
        inside = [a for a in own if a in prefix]
        if not inside:
            raise DhcpError(f"interface {interface} has no address in the cache prefix {prefix}")
        for address in inside:
            mac = ipv6.mac_of(address)
            if mac and mac.startswith(network.mac_prefix):
                raise DhcpError(
                    f"this server's address {address} is the EUI-64 address an instance with "
                    f"MAC {mac} forms by SLAAC: give the server another interface identifier"
                )
