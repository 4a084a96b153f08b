"""Tables of the port store (SQLAlchemy Core; alembic migrations create them).

- ``ports``: one row per instance. Unique instance, MAC, address and device
  name: the database itself refuses a duplicate, whatever the allocators do.
- ``allocators``: one row per subnet, the high-water marks of the address
  index and the MAC suffix. Allocation takes this row's lock, so concurrent
  allocators on many hosts are serialised for the few statements that matter.
- ``free_addresses`` / ``free_macs``: released values, reused oldest first and
  only once the high-water marks reach the end (a released address is reused
  as late as possible, when stale ARP and DHCP state is long gone).
- ``port_events``: the change log the DHCP sync follows (upsert / release).
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


metadata = MetaData()

ports = Table(
    "ports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_uuid", String(36), nullable=False, unique=True),
    Column("mac", String(17), nullable=False, unique=True),
    Column("address", BigInteger, nullable=False, unique=True),
    Column("device", String(15), nullable=False),
    Column("host", String(255), nullable=False, index=True),
    Column("bridge", String(15), nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
    Index("uq_ports_device", "device", unique=True),  # migration 0002
)

allocators = Table(
    "allocators",
    metadata,
    Column("subnet", String(18), primary_key=True),
    Column("next_address_index", BigInteger, nullable=False),
    Column("next_mac_suffix", BigInteger, nullable=False),
)

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

port_events = Table(
    "port_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(8), nullable=False),  # "upsert" | "release"
    Column("instance_uuid", String(36), nullable=False),
    Column("mac", String(17), nullable=False),
    Column("address", BigInteger, nullable=False),
    Column("device", String(15), nullable=False),
    Column("host", String(255), nullable=False),
    Column("bridge", String(15), nullable=False),
    Column("created_at", Timestamp(), nullable=False, index=True),
)
