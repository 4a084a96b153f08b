"""The previous release's allocator: one row per subnet in ``allocators``, every
row locked by every allocation, the MAC counter the largest of them.

Used while the schema is expanded (store/phases.py): hosts of the previous
release may be allocating from these rows, and a second counter over the same
subnets (the stripes) would hand out addresses they released while fresh ones
remain, or the other way round. Once contracted, no such host is left and
allocation takes the stripes (store/stripes.py). Same interface as there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from cachenet.store.addresses import AddressPool, SubnetSpace
from cachenet.store.schema import allocators
from cachenet.store.stripes import Counters

# Every row, always in the same order: concurrent allocators queue on the first
# and never deadlock.
_LOCK_ALL = select(allocators).order_by(allocators.c.subnet).with_for_update()
_SAVE = (
    update(allocators)
    .where(allocators.c.subnet == bindparam("which_subnet"))
    .values(next_address_index=bindparam("next_address"), next_mac_suffix=bindparam("next_mac"))
)


@dataclass
class SubnetCounter(Counters):
    """The locked row of one subnet (None ``stored``: made when saved)."""

    subnet: str
    stored: bool

    def save(self, conn: Connection) -> None:
        values = {"next_address": self.next_address, "next_mac": self.next_mac}
        if self.stored:
            conn.execute(_SAVE, {"which_subnet": self.subnet, **values})
        else:  # a concurrent first insert of the same row fails here and is retried
            conn.execute(
                insert(allocators).values(
                    subnet=self.subnet,
                    next_address_index=values["next_address"],
                    next_mac_suffix=values["next_mac"],
                )
            )
            self.stored = True


def lock_for_address(conn: Connection, pool: AddressPool, full: set[str]) -> Counters | None:
    """The row of the first subnet with a fresh address left; None when none has one."""
    rows, mac = _lock_all(conn)
    for space in pool.spaces:
        counter = _counter(rows, str(space.subnet), mac, space)
        if counter.next_address < space.size:
            return counter
    return None


def lock_for_mac(conn: Connection, rows: Sequence[str], mac_space: int) -> Counters | None:
    """The first of the allocator ``rows``, to move the MAC counter; None when no MAC is left."""
    locked, mac = _lock_all(conn)
    return _counter(locked, rows[0], mac, None) if mac < mac_space else None


def _lock_all(conn: Connection) -> tuple[dict[str, Row[Any]], int]:
    """Every row by subnet (those of subnets that left the pool included), and the MAC
    counter: each row keeps its value of when it was last written, the largest is current."""
    rows = conn.execute(_LOCK_ALL).all()
    mac = max((int(row.next_mac_suffix) for row in rows), default=0)
    return {row.subnet: row for row in rows}, mac


def _counter(
    rows: dict[str, Row[Any]], subnet: str, mac: int, space: SubnetSpace | None
) -> SubnetCounter:
    row = rows.get(subnet)
    index = 0 if row is None else int(row.next_address_index)
    return SubnetCounter(index, mac, space, step=1, subnet=subnet, stored=row is not None)
