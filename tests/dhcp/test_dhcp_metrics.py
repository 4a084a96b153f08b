"""/metrics of a real `cachenet dhcp serve` (dnsmasq in a namespace, MariaDB as the store),
scraped over the namespace's loopback while ports come and go and the store goes away."""

import json
import os
import signal
import time
import uuid

import pytest

from harness import databases
from harness.metrics import scrape, scrape_until

pytestmark = pytest.mark.root

LISTEN = "127.0.0.1:9464"  # the server's namespace has a loopback of its own
SUBNET = "10.77.0.0/24"  # the cache_network fixture's, 10.77.0.1-9 reserved
ALLOCATABLE = 254 - 9


def allocate(network):
    result = network.cachenet("ports", "allocate", str(uuid.uuid4()), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def pool(scraped, figure):
    return scraped[f"cachenet_pool_{figure}", {"subnet": SUBNET}]


def test_dhcp_serve_metrics_follow_the_store_and_dnsmasq(cache_network, tmp_path):
    with databases.mariadb_behind_a_link(tmp_path) as store:
        cache_network.configure(database=store.url, metrics_listen=LISTEN)
        allocate(cache_network)
        cache_network.start_server()
        ns = cache_network.server_ns

        start = scrape_until(LISTEN, lambda s: s.get("cachenet_dhcp_reservations") == 1,
                             "the first sync", ns)  # fmt: skip
        assert pool(start, "addresses") == ALLOCATABLE
        assert (pool(start, "allocated_addresses"), pool(start, "free_addresses")) == (
            1,
            ALLOCATABLE - 1,
        )
        assert start["cachenet_store_up"] == 1
        assert start["cachenet_dhcp_reservations_written_total"] == 1
        assert time.time() - start["cachenet_dhcp_last_sync_timestamp_seconds"] < 5
        assert "cachenet_agent_reconciliations_total" not in start.text  # not the agent's

        more = [allocate(cache_network) for _ in range(2)]
        grown = scrape_until(LISTEN, lambda s: s["cachenet_dhcp_reservations"] == 3,
                             "two new reservations", ns)  # fmt: skip
        assert pool(grown, "allocated_addresses") == 3
        assert pool(grown, "free_addresses") == ALLOCATABLE - 3
        assert grown["cachenet_dhcp_reservations_written_total"] == 3

        released = cache_network.cachenet("ports", "release", more[0]["instance_uuid"])
        assert released.returncode == 0, released.stderr
        shrunk = scrape_until(LISTEN, lambda s: s["cachenet_dhcp_reservations"] == 2,
                              "a reservation removed", ns)  # fmt: skip
        assert pool(shrunk, "allocated_addresses") == 2
        assert shrunk["cachenet_dhcp_reservations_removed_total"] == 1

        os.kill(cache_network.dnsmasq_pid(), signal.SIGKILL)
        restarted = scrape_until(
            LISTEN, lambda s: s["cachenet_dnsmasq_restarts_total", {"reason": "exited"}] == 1,
            "the dnsmasq restart to be counted", ns,
        )  # fmt: skip
        assert restarted["cachenet_store_up"] == 1

        store.cut()
        down = scrape_until(LISTEN, lambda s: s["cachenet_store_up"] == 0, "store_up 0", ns)
        assert down.get("cachenet_pool_allocated_addresses", subnet=SUBNET) is None
        synced_before_cut = down["cachenet_dhcp_last_sync_timestamp_seconds"]
        time.sleep(1)
        still_down = scrape(LISTEN, ns)  # the service goes on; the sync time stands still
        assert still_down["cachenet_dhcp_last_sync_timestamp_seconds"] == synced_before_cut
        assert still_down["cachenet_store_up"] == 0
        assert cache_network.server.poll() is None

        store.restore()
        back = scrape_until(
            LISTEN,
            lambda s: s["cachenet_store_up"] == 1
            and s["cachenet_dhcp_last_sync_timestamp_seconds"] > synced_before_cut,
            "store_up 1 and a sync again", ns,
        )  # fmt: skip
        assert pool(back, "allocated_addresses") == 2
        assert back["cachenet_dhcp_reservations_removed_total"] == 1
