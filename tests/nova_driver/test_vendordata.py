"""Nova's own DynamicJSON vendordata code asking a running ``cachenet vendordata serve``,
and Debian's cloud-init consuming the vendor_data2.json Nova makes of the answer.
"""

import uuid
from pathlib import Path

import fixtures
from nova import objects, test
from nova.api.metadata.vendordata_dynamic import DynamicVendorData
from test_nova_driver import NovaUnderPytest

from cachenet.guest.vendordata import cloud_config
from cachenet.settings import load_settings
from cachenet.store import open_store
from harness.cloudinit import consume_vendor_data2
from harness.vendordata_service import vendordata_service

TARGET = "cloud-init"  # the key of vendor_data2.json cloud-init reads


class DynamicVendorDataTest(NovaUnderPytest, test.NoDBTestCase):
    allowed_sources = "127.0.0.0/8"

    def setUp(self):
        super().setUp()
        objects.register_all()
        directory = Path(self.useFixture(fixtures.TempDir()).path)
        self.service = self.enterContext(
            vendordata_service(
                directory,
                f"sqlite:///{directory}/ports.sqlite",
                vendordata_allowed_sources=self.allowed_sources,
            )
        )
        self.settings = load_settings([str(self.service.config_file)])
        self.flags(
            vendordata_providers=["StaticJSON", "DynamicJSON"],
            vendordata_dynamic_targets=[f"{TARGET}@{self.service.url}"],
            group="api",
        )

    def instance(self, instance_uuid):
        return objects.Instance(
            uuid=instance_uuid,
            project_id="9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d",
            image_ref=str(uuid.uuid4()),
            user_data=None,
            hostname="vm-1",
            metadata={},
            system_metadata={},
        )

    def allocate(self, instance_uuid):
        return open_store(self.settings).allocate(instance_uuid, "compute-1")


class AllowedSourceTest(DynamicVendorDataTest):
    def test_an_allocated_instance_gets_cloud_config_that_cloud_init_accepts(self):
        instance_uuid = str(uuid.uuid4())
        port = self.allocate(instance_uuid)
        self.allocate(str(uuid.uuid4()))  # another instance's port is not in the answer

        vendor_data2 = DynamicVendorData(self.instance(instance_uuid)).get()

        self.assertEqual({TARGET: cloud_config(port, self.settings.network)}, vendor_data2)
        consumed = consume_vendor_data2(vendor_data2)
        self.assertEqual(["text/cloud-config"], consumed["parts"])
        self.assertEqual([], consumed["schema_errors"])

    def test_an_unknown_instance_gets_what_cloud_init_skips_even_when_failures_are_fatal(self):
        self.flags(vendordata_dynamic_failure_fatal=True, group="api")
        self.allocate(str(uuid.uuid4()))

        vendor_data2 = DynamicVendorData(self.instance(str(uuid.uuid4()))).get()

        self.assertEqual({TARGET: ""}, vendor_data2)
        self.assertIsNone(consume_vendor_data2(vendor_data2)["raw"])


class RefusedSourceTest(DynamicVendorDataTest):
    allowed_sources = "10.0.0.0/8"  # Nova asks from 127.0.0.1

    def test_a_refused_source_gets_nothing(self):
        instance_uuid = str(uuid.uuid4())
        self.allocate(instance_uuid)

        vendor_data2 = DynamicVendorData(self.instance(instance_uuid)).get()

        self.assertEqual({TARGET: {}}, vendor_data2)  # Nova logged the 403 and went on
        self.assertIsNone(consume_vendor_data2(vendor_data2)["raw"])
        log = self.service.stop()
        self.assertIn("403 to 127.0.0.1: source not in vendordata_allowed_sources", log)
