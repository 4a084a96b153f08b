"""The cache network: its pool of addresses (``subnet``, ``reserved``), the MACs
the store hands to ports (``mac_prefix``) and its MTU. Parsed and checked here;
the address arithmetic is the IPAM layer's (``cachenet.store.addresses``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from oslo_config import cfg

from cachenet import ipv6
from cachenet.errors import IdentityError
from cachenet.identity import parse_mac_prefix, suffix_bits
from cachenet.settings.reading import Area, Values, shown_value
from cachenet.store.addresses import AddressPool, AddressRange, parse_address_range

# Address space no cache subnet may touch: only unicast, routable-in-a-site ranges work.
_UNUSABLE_NETWORKS = {
    ipaddress.IPv4Network("0.0.0.0/8"): "'this network'",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback",
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast",
    ipaddress.IPv4Network("240.0.0.0/4"): "reserved (and broadcast)",
}

OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        "subnet",
        default=["10.99.0.0/16"],
        help="The cache pool: one or more IPv4 subnets (CIDRs, comma-separated, not "
        "overlapping), filled in this order. Private or global unicast, not loopback, "
        "link-local, multicast or 0.0.0.0/8. A subnet is added by appending it and "
        "restarting; one still holding ports cannot be removed. IPv6 /64 prefixes may "
        "stand beside them (dual stack) or alone (an IPv6-only pool): each port's IPv6 "
        "address is the EUI-64 of its MAC.",
    ),
    cfg.ListOpt(
        "reserved",
        default=[],
        help="Addresses of the pool never handed to an instance: gateways, DHCP servers, "
        "cache nodes. Single addresses, ranges (a-b) or CIDRs, each inside one subnet. "
        "The network and broadcast addresses are always excluded.",
    ),
    cfg.IntOpt(
        "mtu",
        min=68,
        max=65535,
        help="MTU of the bridge, its uplink and the instances' cache NICs.",
    ),
    cfg.StrOpt(
        "mac_prefix",
        default="fa:17:3e",
        help="Leading octets (1 to 5) of every cache NIC's MAC address. Must be unicast; "
        "a locally administered prefix is recommended.",
    ),
]


@dataclass(frozen=True)
class NetworkSettings(Area):
    """The cache network: the pool's subnets in filling order, the ranges never handed
    out, the leading octets of every port's MAC, the MTU of every link on it.
    ``subnets`` is empty on an IPv6-only pool (``ipv6_prefixes`` is not empty then)."""

    subnets: tuple[ipaddress.IPv4Network, ...] = field(metadata={"option": "subnet"})
    reserved: tuple[AddressRange, ...]
    mac_prefix: str
    mtu: int | None
    # The IPv6 /64 prefixes of ``subnet`` (dual stack); addresses come from MACs (cachenet.ipv6).
    ipv6_prefixes: tuple[ipaddress.IPv6Network, ...] = field(
        default=(), metadata={"option": "subnet"}
    )

    def public_items(self) -> Iterator[tuple[str, object]]:
        """``subnet`` as the option is written: comma-separated, IPv4 then IPv6."""
        subnet = ",".join(str(s) for s in self.subnets + self.ipv6_prefixes)
        for name, value in super().public_items():
            yield name, subnet if name == "subnet" else value


def parse(v: Values, problems: list[str]) -> NetworkSettings | None:
    """The network of the values read, or None with ``problems`` saying why."""
    before = len(problems)
    mac_prefix = None if v["mac_prefix"] is None else _parse_mac_prefix(v["mac_prefix"], problems)
    subnets = _parse_subnets(v["subnet"], problems)
    ipv6_prefixes = _parse_ipv6_prefixes(v["subnet"] or [], problems)
    reserved = _parse_reserved(v["reserved"] or [], subnets, problems)
    if subnets:
        _check_room(AddressPool.of(subnets, reserved), mac_prefix, problems)
    elif ipv6_prefixes and reserved and not any(map(_is_ipv4, v["subnet"] or [])):
        problems.append(
            f"reserved {', '.join(map(str, reserved))}: an IPv6-only pool hands out no IPv4 "
            "address (IPv6 addresses come from the MACs, none needs reserving)"
        )
    if len(problems) > before or mac_prefix is None or v["reserved"] is None:
        return None
    if not subnets and not ipv6_prefixes:  # unset
        return None
    return NetworkSettings(subnets, reserved, mac_prefix, v["mtu"], ipv6_prefixes)


def _check_room(pool: AddressPool, mac_prefix: str | None, problems: list[str]) -> None:
    """Each subnet keeps addresses for instances; the MAC prefix leaves a MAC for each."""
    for space in pool.spaces:
        if space.size <= 0:
            problems.append(
                f"subnet {space.subnet} has no address left for instances once the network, "
                "broadcast and reserved addresses are taken out"
            )
    mac_space = 0 if mac_prefix is None else 1 << suffix_bits(mac_prefix)
    if 0 < mac_space < pool.size:
        problems.append(
            f"mac_prefix {mac_prefix} leaves {mac_space} MAC addresses for the "
            f"{pool.size} instance addresses of the {pool}: use a shorter "
            "prefix or fewer addresses"
        )


def _parse_mac_prefix(text: str, problems: list[str]) -> str | None:
    try:
        return parse_mac_prefix(text)
    except IdentityError as exc:
        problems.append(f"mac_prefix: {exc}")
        return None


def _parse_subnets(
    items: Sequence[str] | None, problems: list[str]
) -> tuple[ipaddress.IPv4Network, ...]:
    """The pool; empty when the option is unset or any subnet is invalid (a problem)."""
    if items is None:
        return ()
    if not items:
        problems.append("subnet is empty: give at least one IPv4 subnet or IPv6 /64 prefix")
        return ()
    items = [item for item in items if not _is_ipv6(item)]  # none: an IPv6-only pool
    subnets = [_parse_subnet(item, problems) for item in items]
    valid = [s for s in subnets if s is not None]
    for i, subnet in enumerate(valid):
        for other in valid[:i]:
            if subnet.overlaps(other):
                problems.append(
                    f"subnet {subnet} overlaps {other}: the subnets of the pool must be disjoint"
                )
    return tuple(valid) if len(valid) == len(subnets) else ()


def _is_ipv6(text: str) -> bool:
    return ":" in text


def _is_ipv4(text: str) -> bool:
    return not _is_ipv6(text)


def _parse_ipv6_prefixes(
    items: Sequence[str], problems: list[str]
) -> tuple[ipaddress.IPv6Network, ...]:
    """The IPv6 prefixes of the ``subnet`` list (each a /64, distinct)."""
    prefixes: list[ipaddress.IPv6Network] = []
    for item in filter(_is_ipv6, items):
        try:
            prefix = ipaddress.IPv6Network(item.strip(), strict=True)
        except ValueError as exc:
            problems.append(f"subnet {shown_value(item)} is not an IPv6 prefix: {exc}")
            continue
        problem = ipv6.prefix_problem(prefix)
        if problem is None and prefix in prefixes:
            problem = f"subnet {prefix} is listed twice: the prefixes of the pool must differ"
        if problem:
            problems.append(problem)
        else:
            prefixes.append(prefix)
    return tuple(prefixes)


def _parse_subnet(text: str, problems: list[str]) -> ipaddress.IPv4Network | None:
    try:
        subnet = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        problems.append(f"subnet {shown_value(text)} is not an IPv4 network: {exc}")
        return None
    if subnet.prefixlen > 30:
        problems.append(f"subnet {subnet} has no room for instances (use a /30 or larger)")
        return None
    for unusable, kind in _UNUSABLE_NETWORKS.items():
        if subnet.overlaps(unusable):
            problems.append(
                f"subnet {subnet} overlaps the {kind} range {unusable}: use a private "
                "(10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) or global unicast range"
            )
            return None
    return subnet


def _parse_reserved(
    items: Iterable[str], subnets: tuple[ipaddress.IPv4Network, ...], problems: list[str]
) -> tuple[AddressRange, ...]:
    ranges = []
    for item in items:
        try:
            r = parse_address_range(item)
        except ValueError as exc:
            problems.append(f"reserved {shown_value(item)}: {exc}")
            continue
        if subnets and not any(r.first in s and r.last in s for s in subnets):
            where = "the subnet" if len(subnets) == 1 else "every subnet of the pool"
            problems.append(
                f"reserved {shown_value(item)} is outside {where} "
                f"{', '.join(map(str, subnets))} (a range lies inside one subnet)"
            )
            continue
        ranges.append(r)
    return tuple(ranges)
