"""The port store on SQLite, PostgreSQL and MariaDB (the same tests on each)."""

import ipaddress
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from cachenet.errors import StoreUnavailable, SubnetExhausted
from cachenet.identity import canonical_mac, has_mac_prefix
from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.schema import ports


def new_uuid():
    return str(uuid.uuid4())


def store_for(db_url, **overrides):
    return open_store(make_settings(database=db_url, **overrides))


def test_allocate_is_idempotent_and_follows_the_rules(db_url):
    store = store_for(db_url, subnet="10.20.0.0/24", reserved=["10.20.0.1-10.20.0.9"])
    instance = new_uuid()
    port = store.allocate(instance, "compute-1")
    assert store.allocate(instance.upper(), "compute-2") == port
    assert port.instance_uuid == instance and port.host == "compute-1"
    assert has_mac_prefix(port.mac, "fa:17:3e") and canonical_mac(port.mac) == port.mac
    assert port.address == ipaddress.IPv4Address("10.20.0.10")
    assert port.device == "cache-" + instance.replace("-", "")[:9]
    assert store.get(instance) == port
    assert store.list() == [port] and store.list("compute-1") == [port]
    assert store.list("compute-2") == []


def test_reserved_network_and_broadcast_are_never_handed_out(db_url):
    store = store_for(db_url, subnet="10.20.0.0/28", reserved=["10.20.0.1", "10.20.0.8-10.20.0.10"])
    addresses = {store.allocate(new_uuid(), "h").address for _ in range(9)}
    assert {str(a) for a in addresses} == {
        "10.20.0.2", "10.20.0.3", "10.20.0.4", "10.20.0.5", "10.20.0.6", "10.20.0.7",
        "10.20.0.11", "10.20.0.12", "10.20.0.13", "10.20.0.14",
    } - {"10.20.0.14"}  # fmt: skip


def test_full_subnet_raises_and_leaves_no_row(db_url):
    store = store_for(db_url, subnet="10.20.0.0/29", reserved=["10.20.0.1"])
    for _ in range(5):
        store.allocate(new_uuid(), "h")
    late = new_uuid()
    with pytest.raises(SubnetExhausted, match=r"10\.20\.0\.0/29 is full: all 5"):
        store.allocate(late, "h")
    assert store.get(late) is None and len(store.list()) == 5


def test_release_frees_address_and_mac_for_reuse_once_fresh_ones_run_out(db_url):
    store = store_for(db_url, subnet="10.20.0.0/29", mac_prefix="fa:17:3e:00:00")
    first = [store.allocate(new_uuid(), "h") for _ in range(6)]
    released = store.release(first[2].instance_uuid)
    assert released == first[2]
    assert store.get(first[2].instance_uuid) is None
    assert store.release(first[2].instance_uuid) is None
    again = store.allocate(new_uuid(), "h")
    assert again.address == released.address
    assert again.mac == "fa:17:3e:00:00:06"  # a fresh MAC first: 250 are left
    with pytest.raises(SubnetExhausted):
        store.allocate(new_uuid(), "h")


def test_move_keeps_mac_and_address(db_url):
    store = store_for(db_url)
    instance = new_uuid()
    port = store.allocate(instance, "compute-1")
    moved = store.move(instance, "compute-2")
    assert (moved.mac, moved.address, moved.host) == (port.mac, port.address, "compute-2")
    assert store.list("compute-1") == [] and store.list("compute-2") == [moved]


def test_gc_releases_dead_instances_of_the_host_after_the_grace(db_url):
    store = store_for(db_url)
    alive, dead, young, elsewhere = (new_uuid() for _ in range(4))
    for instance in (alive, dead, elsewhere):
        store.allocate(instance, "compute-1" if instance != elsewhere else "compute-2")
    with store.engine.begin() as conn:  # age the ports past the grace period
        conn.execute(ports.update().values(created_at=datetime(2000, 1, 1)))
    store.allocate(young, "compute-1")
    released = store.gc("compute-1", [alive], grace_seconds=600)
    assert [p.instance_uuid for p in released] == [dead]
    assert {p.instance_uuid for p in store.list()} == {alive, young, elsewhere}


def test_changes_since_feeds_the_dhcp_sync(db_url):
    store = store_for(db_url)
    a, b = new_uuid(), new_uuid()
    pa = store.allocate(a, "h")
    snapshot = store.snapshot()
    assert snapshot.upserted == [pa] and snapshot.released == []
    pb = store.allocate(b, "h")
    store.release(a)
    changes = store.changes_since(snapshot.cursor)
    assert changes.cursor > snapshot.cursor
    assert [p.instance_uuid for p in changes.upserted] == [pb.instance_uuid]
    assert [p.mac for p in changes.released] == [pa.mac]
    assert store.changes_since(changes.cursor).cursor == changes.cursor


def test_pruning_the_change_log_keeps_the_newest_event_and_what_followers_need(db_url):
    store = store_for(db_url)
    a, b, c = new_uuid(), new_uuid(), new_uuid()
    store.allocate(a, "h")
    store.allocate(b, "h")
    store.release(a)
    assert store.prune_events(3600) == 0  # all younger than an hour
    cursor = store.snapshot().cursor
    assert store.prune_events(0) == 2  # every event but the newest
    assert store.changes_since(cursor).cursor == cursor  # ids do not go back
    assert [p.instance_uuid for p in store.snapshot().upserted] == [b]
    pc = store.allocate(c, "h")  # a new event gets a newer id, even on SQLite
    changes = store.changes_since(cursor)
    assert changes.cursor > cursor
    assert [(p.instance_uuid, p.mac) for p in changes.upserted] == [(c, pc.mac)]


def test_schema_is_created_once_and_reused(db_url):
    instance = new_uuid()
    port = store_for(db_url).allocate(instance, "h")
    reopened = store_for(db_url)
    assert reopened.get(instance) == port
    with reopened.engine.connect() as conn:
        assert len(conn.execute(select(ports)).all()) == 1


def test_unreachable_database_names_the_url_without_password():
    url = "postgresql+psycopg://cachenet:hunter2@127.0.0.1:9/cachenet"
    with pytest.raises(StoreUnavailable) as caught:
        store_for(url)
    message = str(caught.value)
    assert "hunter2" not in message and "cachenet:***@127.0.0.1:9" in message
    assert "\n" not in message
