"""The store on a real PostgreSQL primary with a synchronous streaming standby,
reached through a multi-host URL, while the primary dies and the standby is
promoted under running allocators."""

import time

from cachenet.settings import make_settings
from cachenet.store import open_store
from harness.allocators import SUBNET, Allocators
from harness.pg_cluster import pg_cluster

ALLOCATORS = 4
FAILOVER_MANAGER_DELAY = 1.0  # seconds from the crash to the promotion, as a manager takes


def test_allocations_continue_through_a_failover_and_none_is_lost():
    with pg_cluster() as cluster:
        open_store(
            make_settings(database=cluster.url, subnet=SUBNET)
        ).engine.dispose()  # the schema
        with Allocators(cluster.url, ALLOCATORS) as allocators:
            allocators.wait_for_more(40)
            cluster.crash_primary()
            time.sleep(FAILOVER_MANAGER_DELAY)  # only the standby is up: it refuses writes
            cluster.promote_standby()
            promoted = time.time()
            allocators.wait_for_more(40)
            acked = allocators.stop()
        new_primary = open_store(
            make_settings(database=cluster.url_of(cluster.standby_port), subnet=SUBNET)
        )
        stored = {(p.instance_uuid, p.mac, str(p.address)) for p in new_primary.list()}
        new_primary.engine.dispose()

    assert acked.failures == []  # every allocation under way was retried, none failed
    assert acked.duplicates() == 0
    lost = [port for port in acked.ports if port[:3] not in stored]
    assert lost == []
    assert sum(1 for port in acked.ports if port[3] > promoted) >= 40
    stored_macs = {mac for _, mac, _ in stored}
    stored_addresses = {address for _, _, address in stored}
    assert len(stored_macs) == len(stored_addresses) == len(stored)


def test_a_multi_host_url_skips_a_dead_first_host():
    with pg_cluster() as cluster:
        cluster.crash_primary()
        cluster.promote_standby()
        store = open_store(make_settings(database=cluster.url, subnet=SUBNET))
        port = store.allocate("6f1c1b4e-2a7d-4f0e-9a53-0d4c1d2b3e4f", "compute-1")
        assert store.get(port.instance_uuid) == port
        store.engine.dispose()
