"""metrics_listen inside nova-compute: Nova's real compute service with cachenet's driver
serves the port and pool metrics, which move as servers are created and deleted."""

from test_nova_driver import CacheNicTestBase

from harness.loopback import free_port
from harness.metrics import scrape

SUBNET = {"subnet": "10.99.0.0/16"}  # the default


class CacheNicMetricsTest(CacheNicTestBase):
    def setUp(self):
        self.listen = f"127.0.0.1:{free_port()}"
        self.cachenet_options = {"metrics_listen": self.listen}
        super().setUp()
        driver = self.computes["compute1"].driver
        self.addCleanup(lambda: driver.cleanup_host(driver._cachenet_host))

    def test_creating_and_deleting_a_server_moves_the_figures(self):
        before = scrape(self.listen)
        self.assertEqual(before["cachenet_pool_allocated_addresses", SUBNET], 0)
        self.assertEqual(before["cachenet_store_up"], 1)
        self.assertNotIn("cachenet_agent_", before.text)  # not the agent's
        self.assertNotIn("cachenet_dhcp_", before.text)

        server = self._create_server(networks="none")
        created = scrape(self.listen)
        self.assertEqual(created["cachenet_port_allocations_total"], 1)
        self.assertEqual(created["cachenet_pool_allocated_addresses", SUBNET], 1)
        self.assertGreaterEqual(created["cachenet_port_allocation_duration_seconds_count"], 1)

        self._delete_server(server)
        deleted = scrape(self.listen)
        self.assertEqual(deleted["cachenet_port_releases_total"], 1)
        self.assertEqual(deleted["cachenet_pool_allocated_addresses", SUBNET], 0)
