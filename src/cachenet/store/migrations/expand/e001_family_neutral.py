"""Expand: text address columns of either family, the hosts table, a wider subnet.

Only adds: the previous release (alembic_version 0002) keeps running on the
result, writing its integer ``address`` and ``bridge`` as before and leaving the
new columns NULL. Each step is skipped when already done, so that a host whose
upgrade met another host's (MariaDB commits each DDL statement at once; on
Galera the schema lock holds on one node only) or stopped half-way completes it.

Revision ID: e001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "e001"
down_revision = None

ADDRESS = sa.String(45)  # schema.ADDRESS_TEXT_MAX (migrations keep their own copy)
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    for table in ("ports", "port_events"):
        _add_column(table, sa.Column("ip_address", ADDRESS, nullable=True))
        _add_column(table, sa.Column("ipv6_address", ADDRESS, nullable=True))
    # NULLs never collide: the previous release's rows do not meet these indexes.
    _create_index("uq_ports_ip_address", "ports", "ip_address")
    _create_index("uq_ports_ipv6_address", "ports", "ipv6_address")
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce a length
        op.alter_column(
            "allocators",
            "subnet",
            type_=sa.String(49),  # an IPv6 prefix: 45 characters and "/128"
            existing_type=sa.String(18),
            existing_nullable=False,
        )
    if not sa.inspect(op.get_bind()).has_table("hosts"):
        op.create_table(
            "hosts",
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("generation", sa.Integer, nullable=False),
            sa.Column("seen_at", TIMESTAMP, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("hosts")
    for name in ("uq_ports_ip_address", "uq_ports_ipv6_address"):
        op.drop_index(name, table_name="ports")
    for table in ("ports", "port_events"):
        op.drop_column(table, "ip_address")
        op.drop_column(table, "ipv6_address")


def _add_column(table: str, column: sa.Column[str]) -> None:
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    if column.name not in existing:
        op.add_column(table, column)


def _create_index(name: str, table: str, column: str) -> None:
    existing = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}
    if name not in existing:
        op.create_index(name, table, [column], unique=True)
