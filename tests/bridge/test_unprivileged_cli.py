"""Commands run by a user without the privilege they need: one line naming it, exit 2.

Each command runs as nobody (setpriv) against the real kernel, OVS, libvirt,
SQLite and file system; what it refused must be left as it was.
"""

import json
import os
import subprocess

import pytest

from cachenet.bridge.linuxbridge import LinuxBridge
from cachenet.settings import make_settings
from harness import netns
from harness.unprivileged import NOBODY, cachenet_as

pytestmark = pytest.mark.root


@pytest.fixture
def root_only(shared_dir):
    path = shared_dir / "root-only"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def writable(shared_dir):
    path = shared_dir / "writable"
    path.mkdir()
    path.chmod(0o777)
    return path


def write_conf(directory, **options):
    values = {
        "database": f"sqlite:///{directory}/writable/ports.db",
        "subnet": "10.77.0.0/24",
        "reserved": "10.77.0.1-10.77.0.9",
        **options,
    }
    path = directory / "cachenet.conf"
    path.write_text("[cachenet]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    path.chmod(0o644)
    return path


def assert_one_line_error(result, *expected):
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cachenet: error: "), (
        result.stderr
    )
    for text in expected:
        assert text in result.stderr


@pytest.fixture
def bridge(prefix):
    yield f"{prefix}br"
    netns.delete_link(f"{prefix}br")


def link_exists(name):
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_bridge_ensure_says_it_needs_cap_net_admin(shared_dir, writable, bridge):
    conf = write_conf(shared_dir, bridge=bridge)
    result = cachenet_as(NOBODY, conf, "bridge", "ensure")
    assert_one_line_error(
        result, "bridge ensure needs CAP_NET_ADMIN: run it as root (the cachenet-bridge unit does"
    )
    assert not link_exists(bridge)


def ensure_as_root(bridge):
    settings = make_settings(bridge=bridge)
    LinuxBridge(settings.bridge, settings.network).ensure()


def test_bridge_teardown_says_it_needs_cap_net_admin(shared_dir, writable, bridge):
    ensure_as_root(bridge)  # cachenet's own bridge
    conf = write_conf(shared_dir, bridge=bridge)
    result = cachenet_as(NOBODY, conf, "bridge", "teardown")
    assert_one_line_error(result, "bridge teardown needs CAP_NET_ADMIN: run it as root")
    assert link_exists(bridge)


def test_bridge_status_needs_no_privilege(shared_dir, writable, bridge, prefix):
    """Reading a bridge and its ports' isolation is netlink's unprivileged dump."""
    ensure_as_root(bridge)
    port = f"{prefix}tap"
    netns.add_veth(port, f"{prefix}peer")
    try:
        subprocess.run(["ip", "link", "set", port, "master", bridge], check=True)
        conf = write_conf(shared_dir, bridge=bridge, device_prefix=f"{prefix}t")
        result = cachenet_as(NOBODY, conf, "bridge", "status", "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["exists"] and status["managed"]
        assert status["instance_ports"] == [port]
    finally:
        netns.delete_link(port)


def test_ovsdb_unix_socket_points_to_the_tcp_remote(shared_dir, writable, ovsdb, prefix):
    conf = write_conf(shared_dir, bridge=f"{prefix}br", bridge_type="ovs", ovsdb_connection=ovsdb)
    result = cachenet_as(NOBODY, conf, "bridge", "status")
    assert_one_line_error(
        result,
        f"this user may not open the Open vSwitch database socket {ovsdb.removeprefix('unix:')}",
        "ovsdb_connection = tcp:127.0.0.1:6640",
    )


def test_a_sqlite_store_the_user_may_not_write(shared_dir, root_only):
    conf = write_conf(shared_dir, database=f"sqlite:///{root_only}/ports.db")
    result = cachenet_as(NOBODY, conf, "ports", "list")
    assert_one_line_error(
        result, f"cannot use the port store {root_only}/ports.db: this user may not read and write"
    )
    assert os.listdir(root_only) == []


def test_dhcp_state_dir_the_user_may_not_write(shared_dir, writable, root_only):
    conf = write_conf(shared_dir, dhcp_state_dir=root_only)
    result = cachenet_as(NOBODY, conf, "dhcp", "sync", "--once")
    assert_one_line_error(
        result, f"this user may not write reservations under dhcp_state_dir {root_only}"
    )


def test_dhcp_leases_the_user_may_not_read(shared_dir, writable, root_only):
    (root_only / "leases").write_text("")
    conf = write_conf(shared_dir, dhcp_state_dir=root_only)
    result = cachenet_as(NOBODY, conf, "dhcp", "leases")
    assert_one_line_error(result, f"this user may not read dnsmasq's leases {root_only}/leases")


def test_dhcp_serve_says_it_needs_root(shared_dir, writable):
    conf = write_conf(shared_dir, dhcp_interface="lo", dhcp_state_dir=writable / "dhcp")
    result = cachenet_as(NOBODY, conf, "dhcp", "serve", timeout=30)
    assert_one_line_error(result, "dhcp serve needs root")


def test_libvirt_refusing_the_user(shared_dir, writable, libvirtd):
    conf = write_conf(shared_dir)
    result = cachenet_as(NOBODY, conf, "attach", "no-such-domain")
    assert_one_line_error(
        result, f"cannot connect to libvirt at {libvirtd}", "may not manage libvirt's domains"
    )
