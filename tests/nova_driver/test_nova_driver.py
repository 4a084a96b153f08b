"""cachenet's driver inside Nova's own functional test environment.

Nova's API, conductor, scheduler and compute services run for real, with
Nova's fake libvirt underneath, so Nova's own LibvirtDriver code renders every
domain; the XML handed to libvirt (Guest.create) is what is checked.
"""

import inspect
import os
import subprocess
import sys
import uuid
from typing import ClassVar

import fixtures
from lxml import etree
from nova import context as nova_context
from nova import objects
from nova.compute import task_states
from nova.network import model as network_model
from nova.tests.functional.libvirt import base
from nova.virt import driver as virt_driver
from nova.virt.libvirt import driver as nova_libvirt_driver

from cachenet.nova import compute as cachenet_compute
from cachenet.nova import driver as cachenet_driver
from cachenet.settings import make_settings
from cachenet.store import open_store
from harness import ovs
from harness.wait import wait_for

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
    bridge = "br-cache"

    def setUp(self):
        self.cachenet_dir = self.useFixture(fixtures.TempDir()).path
        self.database = f"sqlite:///{self.cachenet_dir}/ports.sqlite"
        super().setUp()
        self.flags(database=self.database, bridge=self.bridge, group="cachenet")
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
            if (i.find("source") is not None and i.find("source").get("bridge") == self.bridge)
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


class OvsIsolationTest(CacheNicTestBase):
    """On OVS, cachenet's driver marks the cache port protected when a domain starts."""

    cachenet_options: ClassVar[dict[str, str]] = {"bridge_type": "ovs"}

    def setUp(self):
        ovs.ensure_running()  # the machine's OVS, at the default socket
        self.bridge = f"cnt{uuid.uuid4().hex[:8]}"
        ovs.vsctl("add-br", self.bridge, "--", "set", "Bridge", self.bridge,
                  "datapath_type=netdev")  # fmt: skip
        self.addCleanup(ovs.vsctl, "--if-exists", "del-br", self.bridge)
        super().setUp()

    def test_a_started_domain_has_its_cache_port_protected(self):
        server = self._create_server(networks="none")
        device = self.store.get(server["id"]).device
        # What libvirt does as the domain starts (Nova's fake libvirt does not).
        ovs.vsctl("add-port", self.bridge, device, "--", "set", "Interface", device,
                  "type=internal")  # fmt: skip
        self.assertEqual("false", ovs.vsctl("get", "Port", device, "protected"))
        self._reboot_server(server, hard=True)
        self.assertEqual("true", ovs.vsctl("get", "Port", device, "protected"))


class DeletedWhileComputeDownTest(CacheNicTestBase):
    def test_reaping_an_instance_deleted_while_its_compute_was_down_releases_the_port(self):
        server = self._create_server(networks="none")
        compute = self.computes["compute1"]
        compute.stop()
        service = self.admin_api.get_services(host="compute1", binary="nova-compute")[0]
        self.admin_api.put_service(service["id"], {"forced_down": True})
        self._delete_server(server)  # the API deletes it alone; the domain stays on compute1
        self.assertIsNotNone(self.store.get(server["id"]))
        compute.start()
        self.admin_api.put_service(service["id"], {"forced_down": False})
        self.flags(running_deleted_instance_action="reap")
        compute.manager._cleanup_running_deleted_instances(nova_context.get_admin_context())
        self.assertIsNone(self.store.get(server["id"]))


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


class ImagePropertySelectionTest(CacheNicTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {"image_property": "cachenet_enabled"}

    def test_only_an_image_with_the_property_gets_a_cache_nic(self):
        plain = self._create_server(networks="none")
        self.assertEqual([], self.cache_macs(plain))
        image = self._create_image({"cachenet_enabled": "true"})
        selected = self._create_server(image_uuid=image["id"], networks="none")
        self.assertEqual([self.store.get(selected["id"]).mac], self.cache_macs(selected))
        self.assertIsNone(self.store.get(plain["id"]))


class ExclusionTest(CacheNicTestBase):
    def test_an_excluded_flavor_or_project_gets_no_cache_nic(self):
        flavor = self._create_flavor(name="no-cache")
        self.flags(exclude_flavors=["no-cache"], group="cachenet")
        self.computes["compute1"].driver._cachenet_settings = None  # read the new value
        server = self._create_server(flavor_id=flavor, networks="none")
        self.assertEqual([], self.cache_macs(server))
        self.flags(exclude_flavors=[], exclude_projects=[server["tenant_id"]], group="cachenet")
        self.computes["compute1"].driver._cachenet_settings = None
        server = self._create_server(networks="none")
        self.assertEqual([], self.cache_macs(server))
        self.assertEqual([], self.store.list())


class StoreDownFailTest(CacheNicTestBase):
    # Every part of this URL is the operator's business, none the tenant's.
    user, password, host, name = "novauser", "s3cretpw", "127.0.0.9", "portsdb"
    cachenet_options: ClassVar[dict[str, str]] = {
        "database": f"postgresql+psycopg://{user}:{password}@{host}:9/{name}"
    }

    def setUp(self):
        super().setUp()
        self.flags(database=self.cachenet_options["database"], group="cachenet")

    def test_spawn_fails_with_a_clear_fault(self):
        server = self._create_server(networks="none", expected_state="ERROR")
        self.assertNotIn(server["id"], self.domain_xml)
        self.assertEqual(
            f"Cache network for instance {server['id']}: the port store is unavailable",
            server["fault"]["message"],
        )

    def test_the_fault_has_no_store_detail_which_the_compute_log_has(self):
        server = self._create_server(networks="none", expected_state="ERROR")
        fault = str(server["fault"])  # message and, as admin sees it, the traceback
        for detail in (self.user, self.host, self.name, self.password, "s3cret"):
            self.assertNotIn(detail, fault)
        log = self.stdlog.logger.output
        self.assertIn(
            f"Cannot give the instance its cache NIC: cannot use the port store at "
            f"postgresql+psycopg://{self.user}:***@{self.host}:9/{self.name}",
            log,
        )
        self.assertIn(server["id"], log)
        self.assertNotIn("s3cret", log)


class StoreDownSkipTest(CacheNicTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {
        **StoreDownFailTest.cachenet_options,
        "on_store_error": "skip",
    }

    def setUp(self):
        super().setUp()
        self.flags(database=self.cachenet_options["database"], group="cachenet")

    def test_spawn_boots_without_the_cache_nic(self):  # the policy says so
        server = self._create_server(networks="none")
        self.assertEqual([], self.cache_macs(server))


class SriovReattachTest(CacheNicTestBase):
    """After a live migration Nova re-attaches the SR-IOV direct ports it detached,
    when the guest has fewer interfaces than the instance's network_info."""

    def setUp(self):
        super().setUp()
        self.attached = []
        self.stub_out(
            "nova.virt.libvirt.driver.LibvirtDriver.attach_interface",
            lambda driver, context, instance, image_meta, vif: self.attached.append(vif["id"]),
        )
        server = self._create_server(networks="none")  # the guest has its cache NIC only
        self.context = nova_context.get_admin_context()
        self.instance = objects.Instance.get_by_uuid(self.context, server["id"])
        self.direct_port = network_model.VIF(id="sriov-port", vnic_type="direct")
        self.driver = self.computes["compute1"].driver

    def test_a_detached_direct_port_is_attached_again(self):
        network_info = network_model.NetworkInfo([self.direct_port])
        self.driver._reattach_instance_vifs(self.context, self.instance, network_info)
        self.assertEqual(["sriov-port"], self.attached)

    def test_nova_alone_would_count_the_cache_nic_and_leave_it_detached(self):
        """The control for the test above: Nova's own method on the same guest."""
        network_info = network_model.NetworkInfo([self.direct_port])
        nova_libvirt_driver.LibvirtDriver._reattach_instance_vifs(
            self.driver, self.context, self.instance, network_info
        )
        self.assertEqual([], self.attached)


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
        reattach = inspect.signature(nova_libvirt_driver.LibvirtDriver._reattach_instance_vifs)
        self.assertEqual(["self", "context", "instance", "network_info"], list(reattach.parameters))
        create = inspect.signature(nova_libvirt_driver.LibvirtDriver._create_guest)
        self.assertEqual(["self", "context", "xml", "instance"], list(create.parameters)[:4])
        check = inspect.signature(
            nova_libvirt_driver.LibvirtDriver.check_can_live_migrate_destination
        )
        self.assertEqual(["self", "context", "instance"], list(check.parameters)[:3])

    def test_load_compute_driver_finds_cachenets_driver_by_its_short_name(self):
        cachenet_compute.register_driver_module()
        self.flags(compute_driver="cachenet.LibvirtDriver")
        loaded = virt_driver.load_compute_driver(None, "cachenet.LibvirtDriver")
        self.assertIsInstance(loaded, cachenet_driver.LibvirtDriver)


def make_bridge(test):
    """A real Linux bridge with a unique name, removed after ``test``: the hosts'
    cache bridge (both computes of these tests run on this machine)."""
    name = f"cnt{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    test.addCleanup(
        subprocess.run, ["ip", "link", "del", name], check=False, stderr=subprocess.DEVNULL
    )
    return name


class MigrationTest(CacheNicTestBase):
    """Two compute hosts: the port follows the instance, its MAC and address stay."""

    def setUp(self):
        self.bridge = make_bridge(self)
        super().setUp()
        self.start_compute("compute2")
        self.useFixture(fixtures.MonkeyPatch(
            "nova.tests.fixtures.libvirt.Domain.migrateToURI3", self._migrate_stub))  # fmt: skip
        self.destination_xml = None

    def _migrate_stub(self, domain, destination, params, flags):
        """What libvirt does: define the domain on the destination, finish the job."""
        self.destination_xml = params["destination_xml"]
        self.computes["compute2"].driver._host.get_connection().createXML(
            params["destination_xml"], "flags"
        )
        source = self.computes["compute1"].driver._host.get_connection()
        source.lookupByUUIDString(self.server["id"]).complete_job()

    def test_live_migration_with_a_neutron_port_keeps_the_cache_nic(self):
        # With a Neutron port, migrate_data.vifs is set and Nova's VIF update
        # looks every <interface> up by MAC: the cache NIC must not be seen there.
        self.server = self._create_server(
            host="compute1", networks=[{"port": self.neutron.port_1["id"]}]
        )
        before = self.store.get(self.server["id"])
        self._live_migrate(self.server, "completed", host="compute2")
        server = self.api.get_server(self.server["id"])
        self.assertEqual("compute2", server["OS-EXT-SRV-ATTR:host"])
        after = self.store.get(self.server["id"])
        self.assertEqual(
            (before.mac, before.address, "compute2"), (after.mac, after.address, after.host)
        )
        root = etree.fromstring(self.destination_xml.encode())
        macs = [i.find("mac").get("address") for i in root.iter("interface")]
        self.assertEqual([self.neutron.port_1["mac_address"], before.mac], macs)

    def test_without_setting_the_cache_nic_aside_nova_fails_the_migration(self):
        """The control for the test above: Nova's own live migration path."""
        self.useFixture(fixtures.MonkeyPatch(
            "cachenet.nova.driver.LibvirtDriver._live_migration_operation",
            nova_libvirt_driver.LibvirtDriver._live_migration_operation))  # fmt: skip
        self.server = self._create_server(
            host="compute1", networks=[{"port": self.neutron.port_1["id"]}]
        )
        self._live_migrate(
            self.server, "error", server_expected_state="ERROR", wait_for_fault_key=False
        )
        self.assertIsNone(self.destination_xml)

    def test_a_destination_without_the_cache_bridge_fails_the_pre_check(self):
        subprocess.run(["ip", "link", "del", self.bridge], check=True)
        self.server = self._create_server(host="compute1", networks="none")
        mac = self.store.get(self.server["id"]).mac
        # Nova's fixtures make the conductor's cast a call: the pre-check error
        # reaches the API as a 500 (as in Nova's own pre-check tests).
        self.api.api_post(
            f"/servers/{self.server['id']}/action",
            {"os-migrateLive": {"host": "compute2", "block_migration": "auto"}},
            check_response_status=[500],
        )
        self._wait_for_migration_status(self.server, ["error"])
        self.assertIn(
            f"Migration pre-check error: the cache bridge {self.bridge} does not exist on "
            "compute2; run 'cachenet bridge ensure' there",
            self.stdlog.logger.output,
        )
        server = self.api.get_server(self.server["id"])
        self.assertEqual(("ACTIVE", "compute1"), (server["status"], server["OS-EXT-SRV-ATTR:host"]))
        self.assertEqual(("compute1", mac), self._port_host_and_mac(server))
        self.assertIsNone(self.destination_xml)  # libvirt never started the migration

    def test_cold_migration_and_revert_move_the_port_and_keep_the_mac(self):
        self.useFixture(fixtures.MockPatch(
            "nova.virt.libvirt.driver.LibvirtDriver.migrate_disk_and_power_off",
            return_value="{}"))  # fmt: skip
        server = self._create_server(host="compute1", networks="none")
        mac = self.store.get(server["id"]).mac
        server = self._migrate_server(server)
        self.assertEqual("compute2", server["OS-EXT-SRV-ATTR:host"])
        self.assertEqual(("compute2", mac), self._port_host_and_mac(server))
        self.assertEqual([mac], self.cache_macs(server))
        server = self._revert_resize(server)
        self.assertEqual(("compute1", mac), self._port_host_and_mac(server))
        self.assertEqual([mac], self.cache_macs(server))

    def _port_host_and_mac(self, server):
        port = self.store.get(server["id"])
        return port.host, port.mac


class RestoreRulesTest(CacheNicTestBase):
    """nova-compute puts back port security rules lost while it runs, within an interval."""

    cachenet_options: ClassVar[dict[str, str]] = {"agent_reconcile_interval": "1"}

    def setUp(self):
        self.bridge = make_bridge(self)
        super().setUp()

    def table(self):
        listed = subprocess.run(["nft", "list", "table", "bridge", "cachenet"],
                                capture_output=True, text=True)  # fmt: skip
        return listed.stdout if listed.returncode == 0 else None

    def test_a_flushed_table_comes_back_within_the_reconcile_interval(self):
        server = self._create_server(networks="none")
        device = self.store.get(server["id"]).device
        self.assertIn(device, self.table() or "")
        subprocess.run(["nft", "delete", "table", "bridge", "cachenet"], check=True)
        self.assertIsNone(self.table())
        # The interval is 1 s. wait_for sleeps with eventlet's sleep (time is patched
        # here): nova-compute's green threads run meanwhile.
        wait_for(lambda: device in (self.table() or ""), f"{device}'s rules to come back", 5, 0.1)
