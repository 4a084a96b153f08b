"""Connections to a real database server: a burst reuses a few, an idle process
holds none, a poller keeps its own."""

import time
import uuid

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.pool import NullPool

from cachenet.settings import make_settings
from cachenet.store import open_store
from cachenet.store.pooling import PoolOptions
from harness.databases import connections_to, fresh_database
from harness.wait import wait_for

IDLE = 1  # pool_idle_timeout of these tests, seconds


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request):
    with fresh_database(request.param) as url:
        yield url


def test_a_burst_reuses_connections_and_an_idle_store_closes_them(server_url):
    store = open_store(make_settings(database=server_url, pool_idle_timeout=IDLE))
    opened = []
    event.listen(store.engine, "connect", lambda *_: opened.append(1))
    for _ in range(20):
        store.allocate(str(uuid.uuid4()), "compute-1")
    assert len(opened) <= 1  # one allocation after another: one connection, reused
    assert connections_to(server_url) == 1
    wait_for(lambda: connections_to(server_url) == 0, "the idle store to close it", 15)
    store.allocate(str(uuid.uuid4()), "compute-1")  # the next burst connects again
    assert connections_to(server_url) == 1
    wait_for(lambda: connections_to(server_url) == 0, "the idle store to close it again", 15)
    store.engine.dispose()


def test_a_poller_keeps_its_connection(server_url):
    poller = open_store(
        make_settings(database=server_url, pool_idle_timeout=IDLE), hold_connection=True
    )
    poller.snapshot()
    time.sleep(IDLE * 3)
    assert connections_to(server_url) == 1
    poller.engine.dispose()


def test_pool_option_defaults_are_the_settings_defaults():
    assert PoolOptions() == PoolOptions.of(make_settings().store)


SESSION_ID = {"postgresql": "SELECT pg_backend_pid()", "mariadb": "SELECT CONNECTION_ID()"}
KILL = {"postgresql": "SELECT pg_terminate_backend({})", "mariadb": "KILL {}"}


@pytest.mark.parametrize("idle", [IDLE * 1.5, 0], ids=["pinged-after-idle", "in-a-burst"])
def test_a_pooled_connection_the_server_closed_is_replaced(server_url, idle):
    """Idle a second or more: pinged at checkout and replaced. Within a burst (no
    ping): its first statement fails, and the allocation is retried on a new one."""
    store = open_store(make_settings(database=server_url), hold_connection=True)
    kind = "mariadb" if server_url.startswith("mysql") else "postgresql"
    with store.engine.connect() as conn:  # the pooled connection the next allocation gets
        session = conn.exec_driver_sql(SESSION_ID[kind]).scalar()
    killer = create_engine(server_url, poolclass=NullPool)
    with killer.connect() as conn:
        conn.exec_driver_sql(KILL[kind].format(session))
    killer.dispose()
    opened = []
    event.listen(store.engine, "connect", lambda *_: opened.append(1))
    time.sleep(idle)
    port = store.allocate(str(uuid.uuid4()), "compute-1")
    assert store.get(port.instance_uuid) == port
    assert len(opened) == 1  # the dead one replaced
    store.engine.dispose()
