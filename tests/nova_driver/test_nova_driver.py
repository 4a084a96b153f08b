"""cachenet's driver inside Nova's own functional test environment.

Nova's API, conductor, scheduler and compute services run for real, with
Nova's fake libvirt underneath, so Nova's own LibvirtDriver code renders every
domain; the XML handed to libvirt (Guest.create) is what is checked.
"""

import inspect
import os
import sys
from typing import ClassVar

import fixtures
from lxml import etree
from nova.compute import task_states
from nova.tests.functional.libvirt import base
from nova.virt import driver as virt_driver
from nova.virt.libvirt import driver as nova_libvirt_driver

from cachenet.nova import compute as cachenet_compute
from cachenet.nova import driver as cachenet_driver
from cachenet.settings import make_settings
from cachenet.store import open_store

API_PASTE = os.path.join(sys.prefix, "etc", "nova", "api-paste.ini")


class NovaUnderPytest:
    """What Nova's test base needs to run here, from a wheel and under pytest."""

    def setUp(self):
        # The wheel installs api-paste.ini under <prefix>/etc, not where the tests look.
        cachenet_driver.CONF.set_override("api_paste_config", API_PASTE, group="wsgi")
        super().setUp()

    def _clear_attrs(self):
        # Nova's cleanup deletes every public attribute, the one pytest set for
        # the test method included; pytest then fails to delete it. Keep it.
        method = self.__dict__.get(self._testMethodName)
        super()._clear_attrs()
        if method is not None:
            self.__dict__[self._testMethodName] = method


class CacheNicTestBase(NovaUnderPytest, base.ServersTestBase):
    ADMIN_API = True
    microversion = "latest"
    cachenet_options: ClassVar[dict[str, str]] = {}

    def setUp(self):
        self.cachenet_dir = self.useFixture(fixtures.TempDir()).path
        self.database = f"sqlite:///{self.cachenet_dir}/ports.sqlite"
        super().setUp()
        self.flags(database=self.database, group="cachenet")
        for name, value in self.cachenet_options.items():
            self.flags(**{name: value}, group="cachenet")
        self.domain_xml = {}

        original_create = nova_libvirt_driver.libvirt_guest.Guest.create

        def capture(cls, xml, host):  # the XML Nova hands libvirt
            self.domain_xml[etree.fromstring(xml.encode()).findtext("uuid")] = xml
            return original_create(xml, host)

        self.stub_out("nova.virt.libvirt.guest.Guest.create", capture)
        self.start_compute("compute1")

    def _setup_compute_service(self):
        cachenet_compute.register_driver_module()
        self.flags(compute_driver="cachenet.LibvirtDriver")

    @property
    def store(self):
        return open_store(make_settings(database=self.database))

    def cache_macs(self, server):
        root = etree.fromstring(self.domain_xml[server["id"]].encode())
        return [
            i.find("mac").get("address")
            for i in root.iter("interface")
            if (i.find("source") is not None and i.find("source").get("bridge") == "br-cache")
        ]


class CacheNicTest(CacheNicTestBase):
    def test_the_compute_service_runs_cachenets_driver(self):
        driver = self.computes["compute1"].driver
        self.assertIsInstance(driver, cachenet_driver.LibvirtDriver)

    def test_boot_adds_exactly_one_cache_nic_with_the_stores_mac(self):
        server = self._create_server(networks="none")
        port = self.store.get(server["id"])
        self.assertIsNotNone(port)
        self.assertEqual([port.mac], self.cache_macs(server))
        self.assertEqual("compute1", port.host)

    def test_hard_reboot_rescue_stop_start_keep_the_mac(self):
        server = self._create_server(networks="none")
        mac = self.store.get(server["id"]).mac
        self._reboot_server(server, hard=True)
        self.assertEqual([mac], self.cache_macs(server))
        self._stop_server(server)
        self._start_server(server)
        self.assertEqual([mac], self.cache_macs(server))
        self.assertEqual(mac, self.store.get(server["id"]).mac)

    def test_delete_releases_the_port(self):
        server = self._create_server(networks="none")
        self.assertIsNotNone(self.store.get(server["id"]))
        self._delete_server(server)
        self.assertIsNone(self.store.get(server["id"]))
        self.assertEqual([], self.store.list())


class UnselectedInstanceTest(CacheNicTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {"flavor_extra_spec": "cachenet:enabled"}

    def test_a_flavor_without_the_extra_spec_gets_no_cache_nic(self):
        server = self._create_server(networks="none")
        self.assertEqual([], self.cache_macs(server))
        self.assertIsNone(self.store.get(server["id"]))

    def test_a_flavor_with_the_extra_spec_gets_one(self):
        flavor = self._create_flavor(extra_spec={"cachenet:enabled": "true"})
        server = self._create_server(flavor_id=flavor, networks="none")
        self.assertEqual([self.store.get(server["id"]).mac], self.cache_macs(server))


class StoreDownFailTest(CacheNicTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {
        "database": "postgresql+psycopg://nova:secret@127.0.0.1:9/cachenet"
    }

    def setUp(self):
        super().setUp()
        self.flags(database=self.cachenet_options["database"], group="cachenet")

    def test_spawn_fails_with_a_clear_fault(self):
        server = self._create_server(networks="none", expected_state="ERROR")
        self.assertNotIn(server["id"], self.domain_xml)
        fault = server["fault"]["message"]
        self.assertIn("Cache network for instance", fault)
        self.assertIn(
            "cannot use the port store at postgresql+psycopg://nova:***@127.0.0.1:9", fault
        )
        self.assertNotIn("secret", str(server["fault"]))


class StoreDownSkipTest(StoreDownFailTest):
    cachenet_options: ClassVar[dict[str, str]] = {
        **StoreDownFailTest.cachenet_options,
        "on_store_error": "skip",
    }

    def test_spawn_fails_with_a_clear_fault(self):  # the policy says: boot without it
        server = self._create_server(networks="none")
        self.assertEqual([], self.cache_macs(server))


class DriverContractTest(NovaUnderPytest, base.ServersTestBase):
    def test_get_guest_xml_still_has_the_signature_cachenet_relies_on(self):
        parameters = list(inspect.signature(
            nova_libvirt_driver.LibvirtDriver._get_guest_xml).parameters)  # fmt: skip
        self.assertEqual(
            ["self", "context", "instance", "network_info", "disk_info", "image_meta"],
            parameters[:6],
        )
        destroy = list(inspect.signature(nova_libvirt_driver.LibvirtDriver.destroy).parameters)
        self.assertEqual(["self", "context", "instance", "network_info"], destroy[:4])
        self.assertEqual("deleting", task_states.DELETING)

    def test_load_compute_driver_finds_cachenets_driver_by_its_short_name(self):
        cachenet_compute.register_driver_module()
        self.flags(compute_driver="cachenet.LibvirtDriver")
        loaded = virt_driver.load_compute_driver(None, "cachenet.LibvirtDriver")
        self.assertIsInstance(loaded, cachenet_driver.LibvirtDriver)
