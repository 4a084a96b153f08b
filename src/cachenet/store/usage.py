"""How full the pool is: allocatable, used and free addresses per subnet."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from cachenet.store.engine import run_transaction
from cachenet.store.ports import PortStore
from cachenet.store.schema import ports


@dataclass(frozen=True)
class SubnetUsage:
    """One subnet of the pool: ``size`` allocatable addresses (network, broadcast and
    reserved ones left out), ``used`` by a port, ``free`` for the next instances."""

    subnet: ipaddress.IPv4Network
    size: int
    used: int
    free: int


def pool_usage(store: PortStore) -> list[SubnetUsage]:
    """The usage of every subnet of the store's pool (one: ``settings.subnet``)."""
    subnet = store.settings.subnet
    first, last = int(subnet.network_address), int(subnet.broadcast_address)
    in_subnet = select(func.count()).where(ports.c.address.between(first, last))

    def count(connection: Connection) -> int:
        return int(connection.execute(in_subnet).scalar_one())

    used = run_transaction(store.engine, count)
    size = store.settings.allocatable_count
    return [SubnetUsage(subnet, size, used, max(size - used, 0))]
