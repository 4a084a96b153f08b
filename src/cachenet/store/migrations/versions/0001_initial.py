"""The port store: ports, allocators, free lists, change log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None


# Microseconds on MariaDB too (its DATETIME drops them by default).
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("instance_uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("mac", sa.String(17), nullable=False, unique=True),
        sa.Column("address", sa.BigInteger, nullable=False, unique=True),
        sa.Column("device", sa.String(15), nullable=False),
        sa.Column("host", sa.String(255), nullable=False, index=True),
        sa.Column("bridge", sa.String(15), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "allocators",
        sa.Column("subnet", sa.String(18), primary_key=True),
        sa.Column("next_address_index", sa.BigInteger, nullable=False),
        sa.Column("next_mac_suffix", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "free_addresses",
        sa.Column("address", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("released_at", TIMESTAMP, nullable=False, index=True),
    )
    op.create_table(
        "free_macs",
        sa.Column("mac", sa.String(17), primary_key=True),
        sa.Column("released_at", TIMESTAMP, nullable=False, index=True),
    )
    op.create_table(
        "port_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("mac", sa.String(17), nullable=False),
        sa.Column("address", sa.BigInteger, nullable=False),
        sa.Column("device", sa.String(15), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("bridge", sa.String(15), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("port_events", "free_macs", "free_addresses", "allocators", "ports"):
        op.drop_table(table)
