"""Tables of the port store (SQLAlchemy Core; alembic migrations create them).

- ``ports``: one row per instance. Unique instance, MAC, address and device
  name: the database itself refuses a duplicate, whatever the allocators do.
- ``allocators``: one row per subnet, the high-water marks of the address
  index and the MAC suffix, of the previous release's allocations (one lock
  for all of them); read to start a subnet's stripes past them.
- ``allocator_stripes``: STRIPES rows per subnet (store/stripes.py), each handing
  out its share of the subnet's address indexes and of the MAC suffixes:
  concurrent allocations lock different rows instead of queueing on one.
  ``allocators`` stays for the previous release, which allocates from it alone.
- ``free_addresses`` / ``free_macs``: released values, reused oldest first and
  only once the high-water marks reach the end (a released address is reused
  as late as possible, when stale ARP and DHCP state is long gone).
- ``port_events``: the change log the DHCP sync follows (upsert / release).
- ``hosts``: the schema generation each host's cachenet runs, recorded when it
  opens the store: the contract phase waits until no older host is seen.

Addresses are canonical text (``ip_address``, either family; ``ipv6_address``
for the SLAAC address derived from the MAC). The bridge is not stored: it is
the configured bridge of the host that renders the port. The device name is
stored: it is allocated, not derived (an instance whose UUID's leading digits
another port's device already uses gets a hash-derived alternative; the unique
index on ``device`` decides), so it is an identity like the MAC.

While the schema is *expanded* (see ``store/phases.py``) the previous release's
columns (``address`` as an integer, ``bridge``) are still there and written
too: ``expanded_ports`` / ``expanded_port_events`` describe those tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class Timestamp(TypeDecorator[datetime]):
    """DateTime with microseconds on MariaDB too (its DATETIME drops them by default).

    ``DateTime().with_variant(mysql.DATETIME(fsp=6), ...)`` says the same, but
    loads the MySQL dialect in every process, whatever its database (~20 ms).
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())


ADDRESS_TEXT_MAX = 45  # the longest IPv6 address text (IPv4-mapped, RFC 4291 2.2)
SUBNET_TEXT_MAX = ADDRESS_TEXT_MAX + 4  # and "/128"


def _ports(on: MetaData, expanded: bool) -> Table:
    return Table(
        "ports",
        on,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("instance_uuid", String(36), nullable=False, unique=True),
        Column("mac", String(17), nullable=False, unique=True),
        # NULL for a port without IPv4 (an IPv6-only pool, see store/ipv6_only.py).
        Column("ip_address", String(ADDRESS_TEXT_MAX), nullable=True),
        Column("ipv6_address", String(ADDRESS_TEXT_MAX), nullable=True),
        # Allocated, like the MAC (not derivable from the UUID alone): stored, unique.
        Column("device", String(15), nullable=False),
        Column("host", String(255), nullable=False, index=True),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        Index("uq_ports_device", "device", unique=True),  # migration 0002
        Index("uq_ports_ip_address", "ip_address", unique=True),
        Index("uq_ports_ipv6_address", "ipv6_address", unique=True),
        *_legacy_columns(expanded, unique_address=True),
    )


def _port_events(on: MetaData, expanded: bool) -> Table:
    return Table(
        "port_events",
        on,
        Column(
            "id",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("kind", String(8), nullable=False),  # "upsert" | "release"
        Column("instance_uuid", String(36), nullable=False),
        Column("mac", String(17), nullable=False),
        Column("ip_address", String(ADDRESS_TEXT_MAX), nullable=True),
        Column("ipv6_address", String(ADDRESS_TEXT_MAX), nullable=True),
        Column("device", String(15), nullable=False),
        Column("host", String(255), nullable=False),
        Column("created_at", Timestamp(), nullable=False, index=True),
        *_legacy_columns(expanded, unique_address=False),
    )


def _legacy_columns(expanded: bool, unique_address: bool) -> list[Column[Any]]:
    """The previous release's columns, present until the contract phase drops them."""
    if not expanded:
        return []
    return [
        Column("address", BigInteger, nullable=False, unique=unique_address),
        Column("bridge", String(15), nullable=False),
    ]


metadata = MetaData()
ports = _ports(metadata, expanded=False)
port_events = _port_events(metadata, expanded=False)
# The same tables while expanded: what this release reads and writes until the contract.
expanded_ports = _ports(MetaData(), expanded=True)
expanded_port_events = _port_events(MetaData(), expanded=True)

allocators = Table(
    "allocators",
    metadata,
    Column("subnet", String(SUBNET_TEXT_MAX), primary_key=True),
    Column("next_address_index", BigInteger, nullable=False),
    Column("next_mac_suffix", BigInteger, nullable=False),
)

allocator_stripes = Table(
    "allocator_stripes",
    metadata,
    Column("subnet", String(SUBNET_TEXT_MAX), primary_key=True),
    Column("stripe", Integer, primary_key=True, autoincrement=False),
    Column("next_address_index", BigInteger, nullable=False),
    Column("next_mac_suffix", BigInteger, nullable=False),
    # On MariaDB, indexes on (subnet, each counter): migration e002 says why.
)

# IPv4 addresses by number: an IPv6 address is derived from the port's MAC, never
# handed out from a list.
free_addresses = Table(
    "free_addresses",
    metadata,
    Column("address", BigInteger, primary_key=True, autoincrement=False),
    Column("released_at", Timestamp(), nullable=False, index=True),
)

free_macs = Table(
    "free_macs",
    metadata,
    Column("mac", String(17), primary_key=True),
    Column("released_at", Timestamp(), nullable=False, index=True),
)

hosts = Table(
    "hosts",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("generation", Integer, nullable=False),  # phases.GENERATION of its release
    Column("seen_at", Timestamp(), nullable=False),
)
