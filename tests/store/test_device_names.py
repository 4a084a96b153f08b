"""Device names are unique in the store: two UUIDs sharing their leading digits
(UUIDv7s made seconds apart) get different names, each kept for good."""

import multiprocessing
from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from cachenet.identity import check_device
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.engine import make_engine
from cachenet.store.phases import alembic_config

# The ports table as releases up to revision 0002 wrote it (and an expanded schema keeps it).
from cachenet.store.schema import expanded_ports as ports

# Both give cache-01890a5da (the default prefix leaves room for 9 digits).
FIRST = "01890a5d-ac96-7000-8000-000000000001"
SECOND = "01890a5d-ac97-7000-8000-000000000002"


def store_for(db_url):
    return open_store(make_settings(database=db_url, subnet="10.40.0.0/24"))


def test_colliding_uuids_get_distinct_stable_names(db_url):
    store = store_for(db_url)
    first, second = store.allocate(FIRST, "h1"), store.allocate(SECOND, "h2")
    assert first.device == "cache-01890a5da"
    assert second.device != first.device and second.device.startswith("cache-")
    assert check_device(second.device) and len(second.device.encode()) <= 15
    # Stable: read back, allocated again, moved, and after the first is released.
    store.release(FIRST)
    assert store.allocate(SECOND, "h2").device == second.device
    assert store.move(SECOND, "h3").device == second.device
    assert store_for(db_url).get(SECOND).device == second.device
    # Deterministic: the same instance in another store gets the same alternative.
    again = store.allocate(FIRST, "h1")
    assert again.device != second.device


def allocate_one(args):
    db_url, instance, host = args
    store = store_for(db_url)
    try:
        return store.allocate(instance, host).device
    finally:
        store.engine.dispose()


def test_colliding_uuids_allocated_at_once_on_two_hosts_both_succeed(db_url):
    store_for(db_url).engine.dispose()  # schema first
    context = multiprocessing.get_context("spawn")
    pairs = [(f"01890a5d-ac9{n}-7000-8000-00000000000{n}", f"h{n}") for n in range(8)]
    with context.Pool(4) as pool:
        devices = pool.map(allocate_one, [(db_url, u, h) for u, h in pairs])
    assert len(set(devices)) == len(devices)
    assert sorted(p.device for p in store_for(db_url).list()) == sorted(devices)


def at_revision(db_url, revision):
    """A database migrated up to ``revision`` only, as an older cachenet left it."""
    engine = make_engine(db_url)
    config = alembic_config("versions")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def test_the_upgrade_renames_shared_device_names_and_keeps_every_port(db_url):
    engine = at_revision(db_url, "0001")
    now = datetime(2024, 1, 1)
    rows = [
        (FIRST, "fa:17:3e:00:00:01", 0x0A28000A, "cache-01890a5da"),
        (SECOND, "fa:17:3e:00:00:02", 0x0A28000B, "cache-01890a5da"),
        ("01890a5d-ac98-7000-8000-000000000003", "fa:17:3e:00:00:03", 0x0A28000C,
         "cache-01890a5da"),
        ("5b0f3c9e-1111-4222-8333-444455556666", "fa:17:3e:00:00:04", 0x0A28000D,
         "vm5b0f3c9e1111"),
    ]  # fmt: skip
    with engine.begin() as conn:
        for instance, mac, address, device in rows:
            conn.execute(insert(ports).values(
                instance_uuid=instance, mac=mac, address=address, device=device, host="h",
                bridge="br-cache", created_at=now, updated_at=now))  # fmt: skip
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    engine.dispose()

    store = store_for(db_url)  # upgrades
    found = {p.instance_uuid: p for p in store.list()}
    assert set(found) == {r[0] for r in rows}
    for instance, mac, address, _ in rows:
        assert (found[instance].mac, int(found[instance].address)) == (mac, address)
    devices = [found[r[0]].device for r in rows]
    assert devices[0] == "cache-01890a5da" and devices[3] == "vm5b0f3c9e1111"
    assert len(set(devices)) == 4
    assert all(d.startswith("cache-") and len(d) == 15 and check_device(d) for d in devices[1:3])
    with store.engine.begin() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        # The database itself now refuses a shared name.
        dup = conn.execute(select(ports.c.device).where(ports.c.instance_uuid == FIRST)).scalar()
        assert dup == "cache-01890a5da"
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(ports).values(
            instance_uuid="01890a5d-ac99-7000-8000-000000000009", mac="fa:17:3e:00:00:09",
            address=0x0A280014, device="cache-01890a5da", host="h", bridge="br-cache",
            created_at=now, updated_at=now))  # fmt: skip
