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

from sqlalchemy import Connection, select, union

from cachenet.errors import ConfigError
from cachenet.store.addresses import SubnetSpace
from cachenet.store.engine import run_transaction
from cachenet.store.schema import allocator_stripes, allocators

if TYPE_CHECKING:
    from cachenet.store.ports import PortStore


@dataclass(frozen=True)
class SubnetUsage:
    """One subnet of the pool: allocatable addresses, ports holding one, and what is left."""

    subnet: ipaddress.IPv4Network
    size: int  # addresses that can be handed out: not network, broadcast or reserved
    used: int  # ports with an address in the subnet
    free: int  # allocatable addresses no port holds

    def as_dict(self) -> dict[str, object]:
        return {"subnet": str(self.subnet), "size": self.size, "used": self.used, "free": self.free}


def pool_usage(store: PortStore) -> list[SubnetUsage]:
    """Per subnet of the pool, in filling order: size, used and free addresses."""
    held = store.address_numbers()
    return [_usage(space, held) for space in store.pool.spaces]


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
    """ConfigError when a subnet that left the pool still holds ports.

    Every subnet ever allocated from has allocator rows (its stripes, or the
    previous release's row); one no longer in the pool must hold no port
    outside the pool (a port there would be neither served nor listed, and its
    address could not be told apart from a typo).
    The ports are read only when such a subnet exists.
    """
    removed = [s for s in run_transaction(store.engine, _allocator_subnets)
               if not any(s.subnet_of(space.subnet) for space in store.pool.spaces)]  # fmt: skip
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
                f"longer in the pool ({', '.join(str(s.subnet) for s in store.pool.spaces)}): "
                "keep it in subnet until its ports are released"
            )
    if problems:
        raise ConfigError(problems)


def _allocator_subnets(conn: Connection) -> list[ipaddress.IPv4Network]:
    subnets = []
    ever = union(select(allocators.c.subnet), select(allocator_stripes.c.subnet))
    for text in conn.execute(ever).scalars():
        try:
            subnets.append(ipaddress.IPv4Network(text))
        except ValueError:
            continue  # not a row this code wrote; nothing to count
    return subnets
