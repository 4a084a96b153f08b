"""Unique device names: rename the devices two instances share, then index them unique.

Device names are the instance UUID's leading hex digits, and two UUIDs may
share those (UUIDv7s made seconds apart do). Of the ports sharing a name, the
oldest keeps it; the others get the first alternative name no port holds, as
the allocator picks one now (cachenet.identity.alternative_device_names).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from cachenet.identity import DEVICE_SUFFIX_MIN, IFNAMSIZ_MAX, alternative_device_names

revision = "0002"
down_revision = "0001"

ports = sa.table(
    "ports", sa.column("id", sa.Integer), sa.column("instance_uuid"), sa.column("device")
)


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(ports.c.id, ports.c.instance_uuid, ports.c.device).order_by(ports.c.id)
    ).all()
    # Compared lower-case: MariaDB's default collation ignores case in a unique index.
    taken = {row.device.lower() for row in rows}
    kept: set[str] = set()
    for row in rows:
        if row.device.lower() not in kept:
            kept.add(row.device.lower())
            continue
        names = alternative_device_names(_prefix(row.device, row.instance_uuid), row.instance_uuid)
        new = next(name for name in names if name.lower() not in taken)
        connection.execute(sa.update(ports).where(ports.c.id == row.id).values(device=new))
        taken.add(new.lower())
        kept.add(new.lower())
    op.create_index("uq_ports_device", "ports", ["device"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_ports_device", table_name="ports")


def _prefix(device: str, instance_uuid: str) -> str:
    """The device_prefix a device name was made with: what precedes the UUID's digits."""
    digits = instance_uuid.replace("-", "").lower()
    for length in range(len(device), DEVICE_SUFFIX_MIN - 1, -1):
        if device[-length:] == digits[:length]:
            return device[:-length]
    return device[: IFNAMSIZ_MAX - DEVICE_SUFFIX_MIN]
