"""`dhcp serve` on a store whose PostgreSQL primary dies and whose synchronous
standby is promoted: it follows the new primary through the multi-host URL."""

import json
import uuid

import pytest

from harness.pg_cluster import pg_cluster
from harness.wait import wait_for

pytestmark = pytest.mark.root


def allocate(network):
    result = network.cachenet("ports", "allocate", str(uuid.uuid4()), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_dhcp_serve_follows_the_promoted_standby(cache_network):
    with pg_cluster() as cluster:
        # Unix sockets: the server runs in a network namespace, with its own loopback.
        cache_network.configure(database=cluster.socket_url)
        before = allocate(cache_network)
        cache_network.start_server()
        wait_for(
            lambda: cache_network.reservation(before["instance_uuid"]).exists(), "a reservation"
        )
        cluster.crash_primary()
        cluster.promote_standby()
        after = allocate(cache_network)  # only the promoted standby can have it
        wait_for(
            lambda: cache_network.reservation(after["instance_uuid"]).exists(),
            "the reservation of a port allocated on the new primary",
            timeout=30,
        )
        client = cache_network.client(after["mac"])
        assert cache_network.lease(client) == after["address"]
        assert cache_network.server.poll() is None  # it rode out the failover
        cache_network.stop_server()
