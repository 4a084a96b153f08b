import shutil
import tempfile
from pathlib import Path

import pytest

from harness import netns, ovs


@pytest.fixture
def prefix():
    return netns.unique_prefix()


@pytest.fixture
def ns(prefix):
    """A namespace holding a veth pair ``<prefix>up`` / ``<prefix>peer`` to use as uplink."""
    with netns.namespace(f"{prefix}-ns") as name:
        netns.add_veth(f"{prefix}up", f"{prefix}peer", ns=name, peer_ns=name)
        yield name


@pytest.fixture(scope="session")
def ovsdb():
    return ovs.ensure_running()


@pytest.fixture
def root_veth(prefix):
    """A veth pair in the root namespace (OVS's userspace datapath lives there)."""
    netns.add_veth(f"{prefix}up", f"{prefix}peer")
    netns.tx_offload_off(f"{prefix}up")
    yield f"{prefix}up"
    netns.delete_link(f"{prefix}up")


@pytest.fixture
def shared_dir():
    """A directory of root's that every user can read (tmp_path is root's only): config
    files, scripts and wrappers for the tests that run as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="cachenet-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)
