"""The store through a real PgBouncer in transaction mode (Debian 12 ships 1.18,
which cannot keep prepared statements), and a storm of hosts through it."""

import threading
import uuid

import pytest

from cachenet.settings import make_settings
from cachenet.store import open_store
from harness.allocators import SUBNET, Acked, storm
from harness.databases import fresh_database
from harness.pgbouncer import pgbouncer

HOSTS = 8
EACH = 25  # past psycopg's threshold of five runs, after which it prepares a statement
STORM_HOSTS = 200


@pytest.fixture
def bouncer():
    """A URL through PgBouncer (two server connections) to a fresh database with the schema."""
    with fresh_database("postgresql") as url, pgbouncer(url, server_pool_size=2) as through:
        open_store(make_settings(database=url, subnet=SUBNET)).engine.dispose()
        yield through


def bursts(url: str, **overrides: object) -> Acked:
    """HOSTS hosts, each with its own pooled engine, allocating EACH ports in a row."""
    outcome = Acked()
    lock = threading.Lock()

    def host(index: int) -> None:
        store = open_store(make_settings(database=url, subnet=SUBNET, **overrides))
        for _ in range(EACH):
            try:
                port = store.allocate(str(uuid.uuid4()), f"host-{index}")
            except Exception as exc:
                with lock:
                    outcome.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                outcome.ports.append((port.instance_uuid, port.mac, str(port.address), 0.0))
        store.engine.dispose()

    threads = [threading.Thread(target=host, args=(i,)) for i in range(HOSTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_pooled_allocations_through_pgbouncer_without_prepared_statements(bouncer):
    outcome = bursts(bouncer, database_prepared_statements=False)
    assert outcome.failures == []
    assert len(outcome.ports) == HOSTS * EACH
    assert outcome.duplicates() == 0


def test_prepared_statements_break_through_pgbouncer(bouncer):
    """Why database_prepared_statements exists: with it on, PgBouncer hands a
    transaction a server connection that has another client's statement, or
    lacks this client's."""
    outcome = bursts(bouncer, database_prepared_statements=True)
    assert any("prepared statement" in failure for failure in outcome.failures)


def test_a_storm_through_pgbouncer_loses_no_host(bouncer):
    outcome = storm(bouncer, STORM_HOSTS, processes=2, database_prepared_statements=False)
    assert outcome.failures == []
    assert len(outcome.ports) == STORM_HOSTS
    assert outcome.duplicates() == 0
    store = open_store(make_settings(database=bouncer, subnet=SUBNET,
                                     database_prepared_statements=False))  # fmt: skip
    stored = {(p.instance_uuid, p.mac, str(p.address)) for p in store.list()}
    store.engine.dispose()
    assert {port[:3] for port in outcome.ports} == stored
