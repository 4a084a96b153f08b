"""``cachenet-nova-compute``: nova-compute with cachenet's driver importable.

Nova loads ``nova.virt.<compute_driver>`` (nova.virt.driver.load_compute_driver),
so a driver outside the nova.virt package cannot be named directly. This entry
point registers cachenet's driver module as ``nova.virt.cachenet`` and then
runs Nova's own compute service, so nova.conf says
``compute_driver = cachenet.LibvirtDriver`` and no file of Nova's is touched.
The operator replaces ``nova-compute`` by ``cachenet-nova-compute`` in the
service unit; everything else (arguments, config files) stays the same.
"""

from __future__ import annotations

import sys

ALIAS = "nova.virt.cachenet"


def register_driver_module() -> None:
    """Make ``compute_driver = cachenet.LibvirtDriver`` loadable by Nova."""
    from cachenet.nova import driver

    sys.modules.setdefault(ALIAS, driver)


def main() -> None:
    register_driver_module()
    from nova.cmd import compute

    compute.main()
