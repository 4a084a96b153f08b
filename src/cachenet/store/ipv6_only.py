"""IPv6-only pools in the port store: what the schema and the pool's history allow.

On an IPv6-only pool (``subnet`` lists /64 prefixes alone) a port holds no IPv4
address: its row's ``ip_address`` is NULL, its IPv6 address the EUI-64 of its MAC.
The previous release's integer ``address`` column, still there (NOT NULL) while
the schema is only expanded, cannot take such a row: an IPv6-only pool waits
for the contract phase (``cachenet db upgrade``).

Changing the pool's families while ports exist:

- adding an IPv4 subnet to an IPv6-only pool is allowed: new ports get an IPv4
  address too, the ports already there keep only their IPv6 address (allocated
  once, an address is never added to a running instance's port);
- removing the last IPv6 prefix is refused while a port without IPv4 exists: it
  would be left with no address at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from cachenet.errors import ConfigError, StoreError
from cachenet.store.engine import run_transaction
from cachenet.store.schema import ports

if TYPE_CHECKING:
    from cachenet.store.ports import PortStore


def refuse_while_expanded(store: PortStore, contracted: bool) -> None:
    """StoreError for an IPv6-only pool on a schema not yet contracted."""
    if store.network.subnets or contracted:
        return
    raise StoreError(
        f"subnet {_pool_text(store)} is IPv6-only, which the port store's schema holds only "
        "once contracted (ports without an IPv4 address): run `cachenet db upgrade` first "
        "(it waits until every host runs this release)"
    )


def refuse_lost_prefixes(store: PortStore, allocated: Sequence[ipaddress.IPv6Network]) -> None:
    """ConfigError when the pool has no IPv6 prefix left but ports without IPv4 exist.

    ``allocated``: the IPv6 prefixes of the allocator rows. Such a row is written
    only by allocations on an IPv6-only pool, so without one (every pool that never
    was IPv6-only) no port is counted.
    """
    if store.network.ipv6_prefixes or not allocated:
        return
    count = run_transaction(store.engine, _ports_without_ipv4)
    if count:
        raise ConfigError(
            [
                f"subnet {_pool_text(store)} lists no IPv6 prefix, but {count} "
                f"port{'s' if count > 1 else ''} allocated while the pool was IPv6-only "
                f"hold{'' if count > 1 else 's'} no IPv4 address: keep their prefix "
                f"({', '.join(map(str, allocated))}) in subnet until they are released"
            ]
        )


def _ports_without_ipv4(conn: Connection) -> int:
    query = select(func.count()).select_from(ports).where(ports.c.ip_address.is_(None))
    return int(conn.execute(query).scalar() or 0)


def _pool_text(store: PortStore) -> str:
    network = store.network
    return ", ".join(str(s) for s in (*network.subnets, *network.ipv6_prefixes))
