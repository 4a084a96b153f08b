"""How full each subnet of the pool is (``cachenet pool show``, metrics, doctor), and
which subnets left the pool still holding ports.

Addresses are text in the store (either family), which does not sort as
numbers do: the ports' addresses are read (one column) and counted here.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, union

from cachenet.errors import ConfigError
from cachenet.identity import suffix_bits
from cachenet.store import ipv6_only
from cachenet.store.addresses import SubnetSpace
from cachenet.store.engine import run_transaction
from cachenet.store.schema import allocator_stripes, allocators, ports

if TYPE_CHECKING:
    from cachenet.store.ports import PortStore


@dataclass(frozen=True)
class SubnetUsage:
    """One subnet of the pool: allocatable addresses, ports holding one, and what is left.

    For an IPv6 prefix: every port holds the EUI-64 of its MAC in it, so ``size`` is
    the number of MACs under ``mac_prefix`` and ``used`` the number of ports."""

    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    size: int  # addresses that can be handed out: not network, broadcast or reserved
    used: int  # ports with an address in the subnet
    free: int  # allocatable addresses no port holds

    def as_dict(self) -> dict[str, object]:
        return {"subnet": str(self.subnet), "size": self.size, "used": self.used, "free": self.free}


def pool_usage(store: PortStore) -> list[SubnetUsage]:
    """Per subnet of the pool, in filling order: size, used and free addresses; then
    per IPv6 prefix."""
    held = store.address_numbers() if store.pool.spaces else []
    return [_usage(space, held) for space in store.pool.spaces] + _prefix_usage(store)


def ipv4_or_prefix_total(usage: list[SubnetUsage]) -> list[SubnetUsage]:
    """The rows a pool's total adds up: its IPv4 subnets, or on an IPv6-only pool one
    prefix (each port holds an address in every prefix: adding them counts it twice)."""
    ipv4 = [u for u in usage if u.subnet.version == 4]
    return ipv4 or usage[:1]


def _prefix_usage(store: PortStore) -> list[SubnetUsage]:
    prefixes = store.network.ipv6_prefixes
    if not prefixes:
        return []
    count = run_transaction(
        store.engine,
        lambda conn: int(conn.execute(select(func.count()).select_from(ports)).scalar() or 0),
    )
    size = 1 << suffix_bits(store.network.mac_prefix)
    return [SubnetUsage(prefix, size, count, max(size - count, 0)) for prefix in prefixes]


def _usage(space: SubnetSpace, held: list[int]) -> SubnetUsage:
    """``held``: every port's address as a number, sorted (each range count is two bisections)."""
    subnet = space.subnet
    used = _count(held, int(subnet.network_address), int(subnet.broadcast_address))
    # A port may sit on an address reserved after it was handed out: it is
    # used, but takes nothing from the allocatable addresses.
    on_excluded = sum(_count(held, int(r.first), int(r.last)) for r in space.exclusions)
    return SubnetUsage(subnet, space.size, used, space.size - (used - on_excluded))


def _count(held: list[int], first: int, last: int) -> int:
    return bisect.bisect_right(held, last) - bisect.bisect_left(held, first)


def refuse_removed_subnets(store: PortStore) -> None:
    """ConfigError when a subnet that left the pool still holds ports (or the last IPv6
    prefix left while ports hold no IPv4 address: store.ipv6_only).

    Every subnet ever allocated from has allocator rows (its stripes, or the
    previous release's row); one no longer in the pool must hold no port
    outside the pool (a port there would be neither served nor listed, and its
    address could not be told apart from a typo).
    The ports are read only when such a subnet exists.
    """
    allocated = run_transaction(store.engine, _allocator_subnets)
    ipv6_only.refuse_lost_prefixes(
        store, [s for s in allocated if isinstance(s, ipaddress.IPv6Network)]
    )
    removed = [s for s in allocated if isinstance(s, ipaddress.IPv4Network)
               and not any(s.subnet_of(space.subnet) for space in store.pool.spaces)]  # fmt: skip
    if not removed:
        return
    outside = [
        address
        for address in map(ipaddress.IPv4Address, store.address_numbers())
        if store.pool.space_of(address) is None
    ]
    problems = []
    for subnet in removed:
        held = sum(1 for a in outside if a in subnet)
        if held:
            problems.append(
                f"subnet {subnet} still holds {held} port{'s' if held > 1 else ''} but is no "
                f"longer in the pool ({', '.join(map(str, _pool_of(store)))}): "
                "keep it in subnet until its ports are released"
            )
    if problems:
        raise ConfigError(problems)


def _pool_of(store: PortStore) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [*store.network.subnets, *store.network.ipv6_prefixes]


def _allocator_subnets(conn: Connection) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The subnets of the allocator rows; an IPv6 prefix's row keeps an IPv6-only
    pool's MAC counter (store.ipv6_only)."""
    subnets = []
    ever = union(select(allocators.c.subnet), select(allocator_stripes.c.subnet))
    for text in conn.execute(ever).scalars():
        try:
            subnets.append(ipaddress.ip_network(text))
        except ValueError:
            continue  # not a row this code wrote; nothing to count
    return subnets
