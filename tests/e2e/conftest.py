"""Real VMs under libvirtd + QEMU on a cache network built by cachenet's own commands."""

import pytest

from harness import netns, ovs
from harness.lab import SUBNET, CacheLab


@pytest.fixture
def make_lab(libvirtd):
    labs = []

    def make(bridge_type="linuxbridge", subnets=(SUBNET,), **extra):
        """A built lab; ``subnets``: its pool; ``extra``: more options for its config."""
        ovsdb = ovs.ensure_running() if bridge_type == "ovs" else None
        lab = CacheLab(netns.unique_prefix(), bridge_type, ovsdb=ovsdb, libvirt_uri=libvirtd,
                       subnets=subnets)  # fmt: skip
        labs.append(lab)
        if extra:
            lab.conf.write_text(
                lab.conf.read_text() + "".join(f"{k} = {v}\n" for k, v in extra.items())
            )
        lab.build()
        return lab

    yield make
    for lab in labs:
        lab.close()
