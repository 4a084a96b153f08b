"""Contract: the text addresses become the only ones; the integer address and the bridge go.

Runs only through ``cachenet db upgrade``, once no host of the previous release
is seen (cachenet.store.phases), after the expand revision e001. Rows the
previous release wrote have no text address yet: it is filled in from the
integer one first. From here on ``alembic_version`` is 0003, which the previous
release does not know: it refuses to run.

Revision ID: 0003
Revises: 0002
"""

import ipaddress

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

ADDRESS = sa.String(45)
BACKFILL_BATCH = 1000  # rows updated per statement batch


def upgrade() -> None:
    for table in ("ports", "port_events"):
        # Each step is skipped when done: MariaDB commits each statement at once,
        # so a contract that stopped half-way (or another Galera node's) may have
        # done some of them. A leftover NOT NULL ``bridge`` would fail every insert.
        columns = {c["name"]: c for c in sa.inspect(op.get_bind()).get_columns(table)}
        if "address" in columns:
            _backfill(table)
        # SQLite cannot drop or alter a column in place: batch mode copies the table.
        with op.batch_alter_table(table) as batch:
            if columns["ip_address"]["nullable"]:
                batch.alter_column("ip_address", existing_type=ADDRESS, nullable=False)
            for old in ("address", "bridge"):
                if old in columns:
                    batch.drop_column(old)


def downgrade() -> None:
    raise NotImplementedError("the contract phase is not reversible: restore a backup")


def _backfill(name: str) -> None:
    """``ip_address`` from the integer ``address`` where the previous release left it NULL."""
    connection = op.get_bind()
    table = sa.table(
        name, sa.column("id", sa.BigInteger), sa.column("address", sa.BigInteger),
        sa.column("ip_address", ADDRESS),
    )  # fmt: skip
    missing = connection.execute(
        sa.select(table.c.id, table.c.address).where(table.c.ip_address.is_(None))
    ).all()
    fill = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values(ip_address=sa.bindparam("text"))
    )
    for start in range(0, len(missing), BACKFILL_BATCH):
        batch = missing[start : start + BACKFILL_BATCH]
        connection.execute(
            fill, [{"row_id": r.id, "text": str(ipaddress.ip_address(r.address))} for r in batch]
        )
