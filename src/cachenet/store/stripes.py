"""Allocator stripes: concurrent allocations lock different rows, not one.

Every subnet of the pool has STRIPES rows in ``allocator_stripes``. Stripe k
hands out the subnet's address indexes k, k + STRIPES, k + 2 STRIPES, ... and
the MAC suffixes of the same residue class, each from its row's next value.
An allocation locks one stripe with SKIP LOCKED: of the first subnet of the
pool with fresh addresses left, the unlocked stripe with the lowest next
index. Allocations one after another thus still fill the subnets in order,
address after address, while concurrent ones lock different rows. (A row lock
is held to COMMIT, on PostgreSQL until the commit is flushed to disk: with one
allocator row, every allocation on every host waited for the previous one's
commit.) Only when every stripe with addresses left is locked does an
allocation wait, for the lowest.

The stripes are used once the schema is contracted; until then hosts of the
previous release may allocate from its rows in ``allocators``, and so does
this release (store/single_counter.py). A subnet's stripes are made when it
is first needed, past those rows' counters and past every stripe's MAC
suffix: MACs are pool-wide, so a later subnet's stripes carry on where the
earlier ones stopped.

Correctness never rests on the stripes: the unique indexes of ``ports`` refuse
a duplicate (run_transaction retries), and the caller skips a value in use
(handed out under other reserved ranges or another MAC prefix).

SQLite has one writer at a time (BEGIN IMMEDIATE) and no row locks. On Galera
the locks hold on one node only: two nodes taking the same stripe both write
its row and the later commit fails certification, which is retried.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Row, Select, Table, bindparam, func, insert, select, update

from cachenet.store.addresses import AddressPool, SubnetSpace
from cachenet.store.schema import allocator_stripes, allocators

STRIPES = 16  # rows per subnet: allocations that can hold a stripe at once
MYSQL = ("mysql", "mariadb")

_stripes = allocator_stripes.c


Picks = tuple[Select[Any], Select[Any]]


def first_row_locked(query: Select[Any], table: Table, index: str) -> Picks:
    """``query`` (ordered along ``index`` of ``table``, LIMIT 1) locking its row: the
    first statement skips rows others hold, the second waits for them."""
    # Walking the index, MariaDB locks only the row it returns (after a sort, SKIP
    # LOCKED would lock every row it read): the planner is not left to choose.
    for dialect in MYSQL:
        query = query.with_hint(table, f"FORCE INDEX ({index})", dialect)
    return query.with_for_update(skip_locked=True), query.with_for_update()


def first_unlocked(conn: Connection, picks: Picks, params: dict[str, object]) -> Row[Any] | None:
    """The first row nobody holds, locked; else (all held) the first row, waited for."""
    skipping, waiting = picks
    return conn.execute(skipping, params).first() or conn.execute(waiting, params).first()


def _lowest(column: Any, index: str) -> Picks:
    """The subnet's stripe with the lowest ``column`` below ``limit``."""
    query = (
        select(allocator_stripes)
        .where(_stripes.subnet == bindparam("subnet"), column < bindparam("limit"))
        .order_by(column)
        .limit(1)
    )
    return first_row_locked(query, allocator_stripes, index)


_BY_ADDRESS = _lowest(_stripes.next_address_index, "ix_allocator_stripes_next_address_index")
_BY_MAC = _lowest(_stripes.next_mac_suffix, "ix_allocator_stripes_next_mac_suffix")
_HAS_ROWS = select(_stripes.stripe).where(_stripes.subnet == bindparam("subnet")).limit(1)
_SAVE = (
    update(allocator_stripes)
    .where(_stripes.subnet == bindparam("which_subnet"), _stripes.stripe == bindparam("which"))
    .values(next_address_index=bindparam("next_address"), next_mac_suffix=bindparam("next_mac"))
)
# Where a new subnet's stripes start: past the previous release's counters and
# past every stripe's MAC suffix.
_STARTS = select(
    select(allocators.c.next_address_index)
    .where(allocators.c.subnet == bindparam("subnet"))
    .scalar_subquery(),
    select(func.max(allocators.c.next_mac_suffix)).scalar_subquery(),
    select(func.max(_stripes.next_mac_suffix)).scalar_subquery(),
)


@dataclass
class Counters:
    """A locked allocator row: the next address index of ``space`` and the next MAC
    suffix it hands out, each moving on by ``step``."""

    next_address: int
    next_mac: int
    space: SubnetSpace | None  # None: locked for its MAC suffixes only
    step: int

    def take_address(self) -> ipaddress.IPv4Address | None:
        """The row's next fresh address, or None when it has none left."""
        if self.space is None or self.next_address >= self.space.size:
            return None
        self.next_address += self.step
        return self.space.address_at(self.next_address - self.step)

    def take_mac_suffix(self, mac_space: int) -> int | None:
        """The row's next fresh MAC suffix, or None when it has none left."""
        if self.next_mac >= mac_space:
            return None
        self.next_mac += self.step
        return self.next_mac - self.step

    def save(self, conn: Connection) -> None:
        """Write the counters back to the row."""
        raise NotImplementedError


@dataclass
class Stripe(Counters):
    """One locked stripe of a subnet."""

    subnet: str
    number: int

    def save(self, conn: Connection) -> None:
        conn.execute(
            _SAVE,
            {"which_subnet": self.subnet, "which": self.number,
             "next_address": self.next_address, "next_mac": self.next_mac},
        )  # fmt: skip


class Allocator(Protocol):
    """Which allocator row an allocation locks (stripes, or the previous release's rows)."""

    def lock_for_address(
        self, conn: Connection, pool: AddressPool, full: set[str]
    ) -> Counters | None: ...

    def lock_for_mac(
        self, conn: Connection, rows: Sequence[str], mac_space: int
    ) -> Counters | None: ...


def lock_for_address(conn: Connection, pool: AddressPool, full: set[str]) -> Counters | None:
    """A stripe of the first subnet with fresh addresses left, locked; None when the
    pool has none left. ``full``: subnets known to have none left, skipped; a subnet
    found so is added (it stays so: indexes only grow)."""
    for space in pool.spaces:
        key = str(space.subnet)
        if key in full:
            continue
        limit = {"subnet": key, "limit": space.size}
        row = first_unlocked(conn, _BY_ADDRESS, limit)
        if row is None:
            if not conn.execute(_HAS_ROWS, {"subnet": key}).first():
                _create(conn, key)  # its first allocation; a concurrent one fails and retries
            # Once more: made now, by this allocation or by one that committed meanwhile.
            row = first_unlocked(conn, _BY_ADDRESS, limit)
        if row is not None:
            return _stripe(row, space)
        full.add(key)
    return None


def lock_for_mac(conn: Connection, rows: Sequence[str], mac_space: int) -> Counters | None:
    """A stripe of the allocator ``rows`` (subnets, in pool order) with fresh MAC
    suffixes left, locked, for an allocation that takes no fresh address (a reused
    one, or none on an IPv6-only pool); None when no stripe has any.

    The last subnet's stripes first: made last, they carry the highest suffixes.
    An IPv6-only pool's one row (its first prefix) gets its stripes on first use.
    """
    for key in reversed(rows):
        limit = {"subnet": key, "limit": mac_space}
        row = first_unlocked(conn, _BY_MAC, limit)
        if row is None and not conn.execute(_HAS_ROWS, {"subnet": key}).first():
            _create(conn, key)  # a concurrent first one fails and is retried
            row = first_unlocked(conn, _BY_MAC, limit)
        if row is not None:
            return _stripe(row, None)
    return None


def _stripe(row: Row[Any], space: SubnetSpace | None) -> Stripe:
    return Stripe(
        next_address=int(row.next_address_index),
        next_mac=int(row.next_mac_suffix),
        space=space,
        step=STRIPES,
        subnet=row.subnet,
        number=int(row.stripe),
    )


def _create(conn: Connection, subnet: str) -> None:
    """The subnet's STRIPES rows, starting past what was handed out before them."""
    address, old_mac, stripe_mac = conn.execute(_STARTS, {"subnet": subnet}).one()
    mac = max(int(old_mac or 0), int(stripe_mac or 0))
    rows = [
        {"subnet": subnet, "stripe": k, "next_address_index": first_from(int(address or 0), k),
         "next_mac_suffix": first_from(mac, k)}
        for k in range(STRIPES)
    ]  # fmt: skip
    conn.execute(insert(allocator_stripes).values(rows))  # one statement, not one per row


def first_from(start: int, stripe: int) -> int:
    """The first value from ``start`` on that belongs to ``stripe``."""
    return start + (stripe - start) % STRIPES
