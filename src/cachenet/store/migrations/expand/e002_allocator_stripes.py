"""Expand: allocator stripes, so that concurrent allocations take different rows.

Only adds a table: the previous release keeps allocating from its one row per
subnet in ``allocators``; this release allocates from the stripes, and each
skips what the other took (store/stripes.py). Skipped when already done, as e001.

Revision ID: e002
Revises: e001
"""

import sqlalchemy as sa
from alembic import op

revision = "e002"
down_revision = "e001"

SUBNET = sa.String(49)  # schema.SUBNET_TEXT_MAX (migrations keep their own copy)


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("allocator_stripes"):
        return
    op.create_table(
        "allocator_stripes",
        sa.Column("subnet", SUBNET, primary_key=True),
        sa.Column("stripe", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_address_index", sa.BigInteger, nullable=False),
        sa.Column("next_mac_suffix", sa.BigInteger, nullable=False),
    )
    # MariaDB finds the lowest stripe by walking an index, and then locks only the
    # row it returns (sorting instead, SKIP LOCKED would lock every row it read).
    # PostgreSQL locks only the rows a LIMIT lets through; without an index on the
    # counters its updates of them are HOT (no new index entry per allocation).
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        for column in ("next_address_index", "next_mac_suffix"):
            op.create_index(
                f"ix_allocator_stripes_{column}", "allocator_stripes", ["subnet", column]
            )


def downgrade() -> None:
    op.drop_table("allocator_stripes")
