"""Real VMs under libvirtd + QEMU on a cache network built by cachenet's own commands."""

import contextlib
import subprocess
import time

import libvirt
import pytest

from cachenet.demo import netns
from cachenet.demo.lab import CacheLab
from harness import ovs


def _libvirtd_running() -> bool:
    with contextlib.suppress(libvirt.libvirtError):
        libvirt.open("qemu:///system").close()
        return True
    return False


@pytest.fixture(scope="session")
def libvirtd():
    """libvirtd and virtlogd, started if not running (there is no init system)."""
    if not _libvirtd_running():
        subprocess.run(["virtlogd", "-d"], check=False)
        subprocess.run(["libvirtd", "-d"], check=True)
        deadline = time.monotonic() + 20
        while not _libvirtd_running():
            if time.monotonic() > deadline:
                pytest.fail("libvirtd did not start")
            time.sleep(0.2)
    return "qemu:///system"


@pytest.fixture
def make_lab(libvirtd):
    labs = []

    def make(bridge_type="linuxbridge", **extra):
        ovsdb = ovs.ensure_running() if bridge_type == "ovs" else None
        lab = CacheLab(netns.unique_prefix(), bridge_type, ovsdb=ovsdb, libvirt_uri=libvirtd)
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
