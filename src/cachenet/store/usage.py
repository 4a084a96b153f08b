"""How full each subnet of the pool is (``cachenet pool show``, metrics, doctor), and
which subnets left the pool still holding ports.

Ports are counted by address range (``ports.address`` is unique, hence
indexed), so a count reads the index entries of one subnet, never the table.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, Engine, and_, case, func, or_, select

from cachenet.errors import ConfigError
from cachenet.store.addresses import AddressPool, SubnetSpace
from cachenet.store.engine import run_transaction
from cachenet.store.schema import allocators, ports

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
    """Per subnet of the pool, in filling order: size, used and free addresses.

    One indexed range count per subnet, so a scrape every few seconds costs the
    database little.
    """
    return run_transaction(
        store.engine, lambda conn: [_usage(conn, space) for space in store.pool.spaces]
    )


def _usage(conn: Connection, space: SubnetSpace) -> SubnetUsage:
    # A port may sit on an address reserved after it was handed out: it is
    # used, but takes nothing from the allocatable addresses.
    excluded = or_(*(ports.c.address.between(int(r.first), int(r.last)) for r in space.exclusions))
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(case((excluded, 1), else_=0)), 0)).where(
            _in_range(space.subnet)
        )
    ).one()
    used, on_excluded = int(row[0]), int(row[1])
    return SubnetUsage(space.subnet, space.size, used, space.size - (used - on_excluded))


def refuse_removed_subnets(engine: Engine, pool: AddressPool) -> None:
    """ConfigError when a subnet that left the pool still holds ports.

    Every subnet ever allocated from has an allocator row; one no longer in the
    pool must hold no port outside the pool (a port there would be neither
    served nor listed, and its address could not be told apart from a typo).
    """
    problems = run_transaction(engine, lambda conn: _removed_subnet_problems(conn, pool))
    if problems:
        raise ConfigError(problems)


def _removed_subnet_problems(conn: Connection, pool: AddressPool) -> list[str]:
    problems = []
    for text in conn.execute(select(allocators.c.subnet)).scalars():
        try:
            removed = ipaddress.IPv4Network(text)
        except ValueError:
            continue  # not a row this code wrote; nothing to count
        held = _ports_outside_pool(conn, removed, pool)
        if held:
            problems.append(
                f"subnet {removed} still holds {held} port{'s' if held > 1 else ''} but is no "
                f"longer in the pool ({', '.join(str(s.subnet) for s in pool.spaces)}): "
                "keep it in subnet until its ports are released"
            )
    return problems


def _ports_outside_pool(conn: Connection, subnet: ipaddress.IPv4Network, pool: AddressPool) -> int:
    """Ports in ``subnet`` that no subnet of the pool holds (CIDRs nest or are disjoint)."""
    inside = [s.subnet for s in pool.spaces if s.subnet.overlaps(subnet)]
    if any(subnet.subnet_of(s) for s in inside):
        return 0
    outside = and_(_in_range(subnet), *(~_in_range(s) for s in inside))
    return int(conn.execute(select(func.count()).where(outside)).scalar_one())


def _in_range(subnet: ipaddress.IPv4Network) -> ColumnElement[bool]:
    return ports.c.address.between(int(subnet.network_address), int(subnet.broadcast_address))
