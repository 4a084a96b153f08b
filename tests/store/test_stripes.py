"""Allocator stripes on SQLite, PostgreSQL and MariaDB: an allocation held open does
not stall the others; addresses and MACs continue in order across the contract
phase (from the previous release's counters) and across an upgrade of a database
created before the stripes existed."""

import threading
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, select

from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.phases import alembic_config, upgrade
from cachenet.store.schema import allocator_stripes

SUBNET = "10.50.0.0/24"


def new_uuid():
    return str(uuid.uuid4())


def store_for(db_url):
    return open_store(make_settings(database=db_url, subnet=SUBNET))


@pytest.mark.parametrize("db_url", ["postgresql", "mariadb"], indirect=True)  # row locks
def test_an_allocation_held_open_does_not_stall_another(db_url):
    store = store_for(db_url)
    assert str(store.allocate(new_uuid(), "h").address) == "10.50.0.1"  # stripe 0's first
    engine = create_engine(db_url, isolation_level="READ COMMITTED")
    # A host stalled mid-allocation holds stripe 1, the one the next allocation would take.
    with engine.connect() as stalled, stalled.begin():
        stalled.execute(
            select(allocator_stripes)
            .where(allocator_stripes.c.subnet == SUBNET, allocator_stripes.c.stripe == 1)
            .with_for_update()
        ).one()
        got = []
        other = threading.Thread(target=lambda: got.append(store.allocate(new_uuid(), "h")))
        other.start()
        other.join(timeout=30)
        assert got, "the allocation waited for the stalled host's lock"
        assert str(got[0].address) == "10.50.0.3"  # stripe 2's first
    other.join()
    assert str(store.allocate(new_uuid(), "h").address) == "10.50.0.2"  # stripe 1, released
    engine.dispose()
    store.engine.dispose()


def test_addresses_and_macs_continue_in_order_across_the_contract(db_url):
    engine = create_engine(db_url)
    for chain, table, revision in (("versions", "alembic_version", "0002"),
                                   ("expand", "cachenet_expand_version", "e002")):  # fmt: skip
        config = alembic_config(chain)
        with engine.begin() as conn:
            config.attributes.update(connection=conn, version_table=table)
            command.upgrade(config, revision)
    expanded = store_for(db_url)  # allocates from the previous release's counters
    before = [expanded.allocate(new_uuid(), "h") for _ in range(3)]
    upgrade(engine, upgraded_hosts=["h"])
    contracted = store_for(db_url)  # from the stripes, which start past those counters
    after = [contracted.allocate(new_uuid(), "h") for _ in range(3)]
    assert [str(p.address) for p in before + after] == [f"10.50.0.{n}" for n in range(1, 7)]
    assert [p.mac for p in before + after] == [f"fa:17:3e:00:00:0{n}" for n in range(6)]
    for store in (expanded, contracted):
        store.engine.dispose()
    engine.dispose()


def test_a_database_contracted_before_the_stripes_gets_them_on_open(db_url):
    engine = create_engine(db_url)
    for chain, table, revision in (("versions", "alembic_version", "0002"),
                                   ("expand", "cachenet_expand_version", "e001"),
                                   ("versions", "alembic_version", "0003")):  # fmt: skip
        config = alembic_config(chain)
        with engine.begin() as conn:
            config.attributes.update(connection=conn, version_table=table)
            command.upgrade(config, revision)
    store = store_for(db_url)
    assert str(store.allocate(new_uuid(), "h").address) == "10.50.0.1"
    with engine.connect() as conn:
        assert len(conn.execute(select(allocator_stripes)).all()) == 16
    store.engine.dispose()
    engine.dispose()
