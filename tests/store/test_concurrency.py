"""Many processes allocating at once, as many compute nodes would, on each database."""

import multiprocessing
import threading
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from cachenet.settings import make_settings
from cachenet.store import open_store
from harness import databases

PROCESSES = 6
PER_PROCESS = 40
SHARED = [str(uuid.UUID(int=n + 1)) for n in range(10)]  # every process allocates these too


def allocate_many(args):
    db_url, host = args
    store = open_store(make_settings(database=db_url, subnet="10.30.0.0/22"))
    own = [str(uuid.uuid4()) for _ in range(PER_PROCESS)]
    ports = [store.allocate(u, host) for u in own + SHARED]
    store.engine.dispose()
    return [(p.instance_uuid, p.mac, str(p.address)) for p in ports]


def test_concurrent_allocators_never_share_a_mac_or_address(db_url):
    open_store(make_settings(database=db_url, subnet="10.30.0.0/22")).engine.dispose()
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        results = pool.map(allocate_many, [(db_url, f"compute-{n}") for n in range(PROCESSES)])
    seen = {}
    for result in results:
        for instance, mac, address in result:
            # every process got the same port for a shared instance
            assert seen.setdefault(instance, (mac, address)) == (mac, address)
    assert len(seen) == PROCESSES * PER_PROCESS + len(SHARED)
    store = open_store(make_settings(database=db_url, subnet="10.30.0.0/22"))
    stored = store.list()
    assert len(stored) == len(seen)
    assert Counter(p.mac for p in stored).most_common(1)[0][1] == 1
    assert Counter(p.address for p in stored).most_common(1)[0][1] == 1
    assert {p.instance_uuid: (p.mac, str(p.address)) for p in stored} == seen


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_a_server_out_of_connection_slots_delays_an_allocation_but_does_not_fail_it(server):
    """A thousand hosts at once exhaust the server's connections: an allocator
    that is refused a connection backs off and gets its port once one is free."""
    with databases.fresh_database(server) as url:
        open_store(make_settings(database=url)).engine.dispose()  # the schema
        with databases.limited_user(server, url, 1) as busy:
            allocate_while_the_only_slot_is_taken(busy)


def allocate_while_the_only_slot_is_taken(busy):
    hog = create_engine(busy, poolclass=NullPool).connect()  # takes the only slot
    outcome = {}

    def allocate():
        try:
            store = open_store(make_settings(database=busy))
            outcome["port"] = store.allocate(str(uuid.uuid4()), "compute-1")
            store.engine.dispose()  # its pooled session would outlive the user
        except Exception as exc:
            outcome["error"] = exc

    allocator = threading.Thread(target=allocate)
    allocator.start()
    time.sleep(1.0)
    assert allocator.is_alive() and not outcome, outcome  # refused, retrying
    hog.close()
    allocator.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["port"].host == "compute-1"


def open_and_allocate(db_url):
    store = open_store(make_settings(database=db_url, subnet="10.30.0.0/22"))
    port = store.allocate(str(uuid.uuid4()), "compute")
    store.engine.dispose()
    return port.mac


def test_many_hosts_meeting_an_empty_database_at_once_create_its_schema_once(db_url):
    """First use on every host at the same time: one creates the schema, the
    others wait for it or find it made; none fails."""
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        macs = pool.map(open_and_allocate, [db_url] * PROCESSES)
    assert len(set(macs)) == PROCESSES
