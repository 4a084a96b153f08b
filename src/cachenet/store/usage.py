"""How full the pool is: addresses per subnet, allocated and free (metrics, doctor)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from cachenet.store.engine import run_transaction
from cachenet.store.schema import ports

if TYPE_CHECKING:
    from cachenet.store.ports import PortStore


@dataclass(frozen=True)
class SubnetUsage:
    """One subnet of the pool: ``size`` addresses can be handed out, ``used`` are."""

    subnet: ipaddress.IPv4Network
    size: int
    used: int
    free: int


def pool_usage(store: PortStore) -> list[SubnetUsage]:
    """The figures of every subnet of the pool (one subnet: the ``subnet`` option).

    One indexed count, so a scrape every few seconds costs the database little.
    """
    subnet = store.settings.subnet
    size = store.settings.allocatable_count

    def count(conn: Connection) -> int:
        first, last = int(subnet.network_address), int(subnet.broadcast_address)
        query = select(func.count()).select_from(ports).where(ports.c.address.between(first, last))
        return int(conn.execute(query).scalar_one())

    used = run_transaction(store.engine, count)
    return [SubnetUsage(subnet=subnet, size=size, used=used, free=max(size - used, 0))]
