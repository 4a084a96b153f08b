"""Shared fixtures. Real-component fixtures live beside the tests that use them."""

import subprocess

import pytest

from harness.libvirtd import ensure_libvirtd


def _root_table_exists() -> bool | None:
    """Whether this namespace has cachenet's nftables table (None: cannot tell)."""
    try:
        listed = subprocess.run(["nft", "list", "table", "bridge", "cachenet"],
                                capture_output=True, check=False)  # fmt: skip
    except FileNotFoundError:
        return None
    if b"Operation not permitted" in listed.stderr:
        return None
    return listed.returncode == 0


@pytest.fixture(scope="session", autouse=True)
def _no_port_security_table_left_behind():
    """Code under test (the Nova driver, the agent) secures ports in the machine's own
    namespace: its table (default deny for cache-* devices) must not outlive the run."""
    existed = _root_table_exists()
    yield
    if existed is False and _root_table_exists():
        subprocess.run(["nft", "delete", "table", "bridge", "cachenet"], capture_output=True,
                       check=False)  # fmt: skip


@pytest.fixture(scope="session")
def libvirtd():
    """libvirtd and virtlogd, started if not running (a fresh machine has no init system)."""
    ensure_libvirtd()
    return "qemu:///system"
