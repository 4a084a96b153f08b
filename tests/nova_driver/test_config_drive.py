"""The config drive Nova builds with cachenet's driver, read back from the ISO image.

Nova's own services and its own _create_configdrive / InstanceMetadata /
ConfigDriveBuilder code build the drive (genisoimage); the test reads the files
the guest would read.
"""

import ipaddress
import json
import os
import subprocess
from pathlib import Path
from typing import ClassVar

import fixtures
import yaml
from nova import context as nova_context
from nova import objects
from nova.tests import fixtures as nova_fixtures
from nova.virt import netutils
from test_nova_driver import CacheNicTestBase

from cachenet import ipv6
from cachenet.settings import make_settings
from cachenet.store import open_store
from harness import cloudinit

SUBNET = "10.77.0.0/22"
MTU = "9000"


class ImageBackendWithConfigDrives(nova_fixtures.LibvirtImageBackendFixture):
    """Nova's fake image backend, except that a config drive exists when its file does.

    Nova's fixture says every disk exists, so Nova never builds a config drive
    ("an existing one is never overwritten"); the real backends look at the file.
    """

    def __init__(self) -> None:
        super().__init__(exists=self._exists_on_disk)

    def _exists_on_disk(self, name: str) -> bool:
        if not name.startswith("disk.config"):
            return True
        path = self.disks[name].path
        # The instance directory, which Nova's _create_image (mocked by the test base) makes.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.path.exists(path)


class ConfigDriveTestBase(CacheNicTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {"subnet": SUBNET, "mtu": MTU}

    def setUp(self):
        self.useFixture(
            fixtures.MonkeyPatch(
                "nova.tests.fixtures.LibvirtImageBackendFixture", ImageBackendWithConfigDrives
            )
        )
        super().setUp()
        self.flags(force_config_drive=True)

    @property
    def store(self):
        subnet = self.cachenet_options["subnet"]  # the pool nova-compute's driver has
        return open_store(make_settings(database=self.database, subnet=subnet))

    def boot(self, **kwargs):
        port = self.neutron.port_1
        return self._create_server(networks=[{"port": port["id"]}], **kwargs)

    def drive_image(self, server):
        return os.path.join(nova_context.CONF.instances_path, server["id"], "disk.config")

    def drive_file(self, server, path):
        """A file of the server's config drive, as the guest reads it."""
        out = subprocess.run(
            ["isoinfo", "-i", self.drive_image(server), "-R", "-x", path],
            check=True,
            capture_output=True,
        )
        return out.stdout

    def network_data(self, server):
        return json.loads(self.drive_file(server, "/openstack/latest/network_data.json"))

    def nova_network_data(self, server):
        """What Nova alone writes: get_network_metadata of the instance's Neutron ports."""
        ctx = nova_context.get_admin_context()
        instance = objects.Instance.get_by_uuid(ctx, server["id"])
        return netutils.get_network_metadata(instance.get_network_info())


class ConfigDriveTest(ConfigDriveTestBase):
    def test_network_data_lists_the_cache_nic_with_its_reserved_address(self):
        server = self.boot()
        port = self.store.get(server["id"])
        document = self.network_data(server)
        cache_links = [x for x in document["links"] if x["ethernet_mac_address"] == port.mac]
        self.assertEqual(1, len(cache_links))
        link = cache_links[0]
        self.assertEqual(9000, link["mtu"])
        self.assertEqual("phy", link["type"])
        (network,) = [n for n in document["networks"] if n["link"] == link["id"]]
        self.assertEqual("ipv4", network["type"])
        self.assertEqual(str(port.address), network["ip_address"])
        self.assertEqual(str(ipaddress.ip_network(SUBNET).netmask), network["netmask"])
        self.assertEqual([], network["routes"])
        self.assertNotIn("gateway", network)
        self.assertNotIn("services", network)
        self.assertIn(port.address, ipaddress.ip_network(SUBNET))
        self.assertEqual([port.mac], self.cache_macs(server))  # the NIC the domain has

    def test_neutron_part_is_what_nova_alone_writes(self):
        server = self.boot()
        document = self.network_data(server)
        nova = self.nova_network_data(server)
        self.assertEqual(
            self.neutron.port_1["mac_address"], nova["links"][0]["ethernet_mac_address"]
        )
        self.assertEqual(nova["links"], document["links"][:-1])
        self.assertEqual(nova["networks"], document["networks"][:-1])
        self.assertEqual(nova["services"], document["services"])

    def test_ec2_local_ipv4_and_meta_data_stay_neutrons(self):
        server = self.boot()
        port = self.store.get(server["id"])
        ec2 = json.loads(self.drive_file(server, "/ec2/latest/meta-data.json"))
        self.assertEqual("192.168.1.3", ec2["local-ipv4"])
        meta_data = self.drive_file(server, "/openstack/latest/meta_data.json").decode()
        self.assertNotIn(str(port.address), meta_data)
        self.assertNotIn(port.mac, meta_data)
        self.assertNotIn(str(port.address), json.dumps(ec2))

    def test_rebuild_builds_the_drive_again_with_the_same_cache_link(self):
        server = self.boot()
        before = self.network_data(server)
        os.utime(self.drive_image(server), ns=(0, 0))
        self._rebuild_server(server, server["image"]["id"])
        self.assertNotEqual(0, os.stat(self.drive_image(server)).st_mtime_ns)  # a new drive
        self.assertEqual(before, self.network_data(server))
        macs = [link["ethernet_mac_address"] for link in before["links"]]
        self.assertIn(self.store.get(server["id"]).mac, macs)


class UnselectedConfigDriveTest(ConfigDriveTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {
        **ConfigDriveTestBase.cachenet_options,
        "flavor_extra_spec": "cachenet:enabled",
    }

    def test_an_instance_without_the_cache_nic_gets_novas_network_data(self):
        server = self.boot()
        self.assertEqual([], self.cache_macs(server))
        self.assertEqual(self.nova_network_data(server), self.network_data(server))


class StoreDownSkipConfigDriveTest(ConfigDriveTestBase):
    cachenet_options: ClassVar[dict[str, str]] = {
        **ConfigDriveTestBase.cachenet_options,
        "database": "postgresql+psycopg://u:p@127.0.0.9:9/ports",
        "on_store_error": "skip",
    }

    def setUp(self):
        super().setUp()
        self.flags(database=self.cachenet_options["database"], group="cachenet")

    def test_an_instance_booted_without_the_cache_nic_gets_novas_network_data(self):
        server = self.boot()
        self.assertEqual([], self.cache_macs(server))
        self.assertEqual(self.nova_network_data(server), self.network_data(server))


class CloudInitRendersTheDriveTest(ConfigDriveTestBase):
    """Debian's cloud-init turns the network_data.json Nova built into netplan, ENI and
    systemd-networkd configuration, as it does on a guest's first boot."""

    NEUTRON_NIC, CACHE_NIC = "ens3", "ens4"

    def setUp(self):
        super().setUp()
        self.server = self.boot()
        self.port = self.store.get(self.server["id"])
        self.known_macs = {
            self.neutron.port_1["mac_address"]: self.NEUTRON_NIC,
            self.port.mac: self.CACHE_NIC,
        }
        document = self.network_data(self.server)
        self.with_cache = cloudinit.network_config(document, self.known_macs)
        self.nova_alone = cloudinit.network_config(
            self.nova_network_data(self.server), self.known_macs
        )

    def render(self, renderer):
        with_cache = self.useFixture(fixtures.TempDir()).path
        nova_alone = self.useFixture(fixtures.TempDir()).path
        return (
            cloudinit.render(self.with_cache, renderer, Path(with_cache)),
            cloudinit.render(self.nova_alone, renderer, Path(nova_alone)),
        )

    @property
    def cidr(self):
        return f"{self.port.address}/{ipaddress.ip_network(SUBNET).prefixlen}"

    def test_netplan_gives_the_nic_with_the_mac_its_address_and_nothing_else(self):
        with_cache, nova_alone = self.render("netplan")
        (path,) = with_cache
        ethernets = yaml.safe_load(with_cache[path])["network"]["ethernets"]
        self.assertEqual(
            {
                "addresses": [self.cidr],
                "match": {"macaddress": self.port.mac},
                "mtu": 9000,
                "set-name": self.CACHE_NIC,
            },
            ethernets[self.CACHE_NIC],
        )
        alone = yaml.safe_load(nova_alone[path])["network"]["ethernets"]
        self.assertEqual(alone, {self.NEUTRON_NIC: ethernets[self.NEUTRON_NIC]})

    def test_eni_gives_the_nic_a_static_stanza_without_gateway_or_dns(self):
        with_cache, nova_alone = self.render("eni")
        interfaces = with_cache["etc/network/interfaces"]
        stanzas = interfaces.strip().split("\n\n")
        cache_stanza = (
            f"auto {self.CACHE_NIC}\niface {self.CACHE_NIC} inet static\n"
            f"    address {self.cidr}\n    mtu 9000"
        )
        self.assertIn(cache_stanza, stanzas)
        # ENI names interfaces; the udev rule cloud-init writes binds the name to the MAC.
        rules = with_cache["etc/udev/rules.d/70-persistent-net.rules"]
        self.assertIn(f'ATTR{{address}}=="{self.port.mac}", NAME="{self.CACHE_NIC}"', rules)
        alone = nova_alone["etc/network/interfaces"].strip().split("\n\n")
        self.assertEqual(alone, [s for s in stanzas if s != cache_stanza])

    def test_networkd_matches_the_mac_and_sets_the_address_without_route_or_dns(self):
        with_cache, nova_alone = self.render("networkd")
        cache_unit = with_cache.pop(f"etc/systemd/network/10-cloud-init-{self.CACHE_NIC}.network")
        self.assertEqual(
            f"[Address]\nAddress={self.cidr}\n\n[Link]\nMTUBytes=9000\n\n"
            f"[Match]\nMACAddress={self.port.mac}\nName={self.CACHE_NIC}\n\n"
            "[Network]\nDHCP=no\n\n",
            cache_unit,
        )
        self.assertEqual(nova_alone, with_cache)


class SlaacDriveTestBase(ConfigDriveTestBase):
    """A booted instance on a pool with the IPv6 prefix PREFIX, its cache NIC's EUI-64
    address, and the network config cloud-init reads from its drive."""

    PREFIX: ClassVar[str]
    CACHE_NIC = "ens4"

    def setUp(self):
        super().setUp()
        self.server = self.boot()
        self.port = self.store.get(self.server["id"])
        self.address = ipv6.eui64_address(ipaddress.IPv6Network(self.PREFIX), self.port.mac)
        known_macs = {self.neutron.port_1["mac_address"]: "ens3", self.port.mac: self.CACHE_NIC}
        self.config = cloudinit.network_config(self.network_data(self.server), known_macs)

    def render(self, renderer):
        return cloudinit.render(
            self.config, renderer, Path(self.useFixture(fixtures.TempDir()).path)
        )


class DualStackDriveTest(SlaacDriveTestBase):
    """On a dual-stack pool, cloud-init gives the cache NIC its EUI-64 IPv6 address
    beside the IPv4 one: fixed, router advertisements off, no route."""

    PREFIX = "fd00:77::/64"
    cachenet_options: ClassVar[dict[str, str]] = {
        **ConfigDriveTestBase.cachenet_options,
        "subnet": f"{SUBNET}, {PREFIX}",
    }

    def test_network_data_carries_the_eui64_address_as_a_static_ipv6_network(self):
        document = self.network_data(self.server)
        (link,) = [x for x in document["links"] if x["ethernet_mac_address"] == self.port.mac]
        networks = [n for n in document["networks"] if n["link"] == link["id"]]
        self.assertEqual(["ipv4", "ipv6"], [n["type"] for n in networks])
        self.assertEqual(str(self.address), networks[1]["ip_address"])
        self.assertEqual([], networks[1]["routes"])

    def test_netplan_holds_both_addresses_and_no_router_advertisements(self):
        (text,) = self.render("netplan").values()
        nic = yaml.safe_load(text)["network"]["ethernets"][self.CACHE_NIC]
        self.assertEqual([f"{self.port.address}/22", f"{self.address}/64"], nic["addresses"])
        self.assertIs(False, nic["accept-ra"])
        self.assertNotIn("gateway6", nic)
        self.assertNotIn("routes", nic)

    def test_eni_adds_a_static_inet6_stanza(self):
        interfaces = self.render("eni")["etc/network/interfaces"]
        self.assertIn(
            f"iface {self.CACHE_NIC} inet6 static\n    address {self.address}/64", interfaces
        )
        self.assertNotIn("gateway", interfaces.split(f"iface {self.CACHE_NIC} inet6")[1])

    def test_networkd_sets_the_ipv6_address(self):
        files = self.render("networkd")
        unit = files[f"etc/systemd/network/10-cloud-init-{self.CACHE_NIC}.network"]
        self.assertIn(f"[Address]\nAddress={self.address}/64\n", unit)
        self.assertNotIn("Gateway", unit)


class IPv6OnlyDriveTest(SlaacDriveTestBase):
    """On an IPv6-only pool, the cache NIC's only address is its EUI-64 one: cloud-init
    configures no IPv4 (and no DHCPv4) on it."""

    PREFIX = "fd00:78::/64"
    cachenet_options: ClassVar[dict[str, str]] = {
        **ConfigDriveTestBase.cachenet_options,
        "subnet": PREFIX,
    }

    def test_network_data_carries_only_the_static_ipv6_network(self):
        self.assertIsNone(self.port.address)
        document = self.network_data(self.server)
        (link,) = [x for x in document["links"] if x["ethernet_mac_address"] == self.port.mac]
        networks = [n for n in document["networks"] if n["link"] == link["id"]]
        self.assertEqual(["ipv6"], [n["type"] for n in networks])
        self.assertEqual(str(self.address), networks[0]["ip_address"])
        self.assertEqual([], networks[0]["routes"])

    def test_netplan_holds_the_eui64_address_alone(self):
        (text,) = self.render("netplan").values()
        nic = yaml.safe_load(text)["network"]["ethernets"][self.CACHE_NIC]
        self.assertEqual([f"{self.address}/64"], nic["addresses"])
        self.assertIs(False, nic["accept-ra"])
        self.assertFalse(nic.get("dhcp4", False))
        self.assertNotIn("routes", nic)

    def test_eni_has_an_inet6_stanza_and_no_inet_one(self):
        interfaces = self.render("eni")["etc/network/interfaces"]
        self.assertIn(
            f"iface {self.CACHE_NIC} inet6 static\n    address {self.address}/64", interfaces
        )
        self.assertNotIn(f"iface {self.CACHE_NIC} inet ", interfaces)

    def test_networkd_sets_only_the_ipv6_address(self):
        files = self.render("networkd")
        unit = files[f"etc/systemd/network/10-cloud-init-{self.CACHE_NIC}.network"]
        self.assertIn(f"[Address]\nAddress={self.address}/64\n", unit)
        self.assertEqual(1, unit.count("\nAddress="), unit)
        self.assertNotIn("DHCP=ipv4", unit)
        self.assertNotIn("Gateway", unit)
