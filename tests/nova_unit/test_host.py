"""Nova's nova/tests/unit/virt/libvirt/test_host.py, collected here (see conftest.py)."""

import unittest

from nova.tests.unit.virt.libvirt import test_host as nova_tests

# Every test case class of Nova's module, as pytest would collect it there.
globals().update(
    {
        name: value
        for name, value in vars(nova_tests).items()
        if isinstance(value, type) and issubclass(value, unittest.TestCase)
    }
)
