"""The Open vSwitch backend against a real ovsdb-server + ovs-vswitchd (netdev datapath)."""

import json
import time

import pytest

from cachenet import hostnet
from cachenet.bridge.ovs import OvsBridge
from cachenet.errors import BridgeError
from cachenet.settings import make_settings
from harness import netns
from harness.cli import run_cachenet
from harness.ovs import ofctl, vsctl

pytestmark = pytest.mark.root


@pytest.fixture
def ovs_bridge(ovsdb, prefix, root_veth):
    def make(openflow_listen=None, **overrides):
        options = {"bridge": f"{prefix}br", "uplink": root_veth, "bridge_type": "ovs"}
        options.update(datapath_type="netdev", ovsdb_connection=ovsdb, **overrides)
        settings = make_settings(**options)
        return OvsBridge(settings.bridge, settings.network, openflow_listen)

    yield make
    vsctl("--if-exists", "del-br", f"{prefix}br")
    vsctl("--if-exists", "del-br", f"{prefix}other")


def test_ensure_builds_the_bridge_with_a_vlan_access_uplink(ovs_bridge, prefix, root_veth):
    bridge = ovs_bridge(vlan=42, mtu=1450)
    changes = bridge.ensure()
    assert changes[0] == f"created OVS bridge {prefix}br (datapath netdev)"
    assert vsctl("get", "Bridge", f"{prefix}br", "datapath_type") == "netdev"
    assert vsctl("list-ports", f"{prefix}br") == root_veth
    assert vsctl("get", "Port", root_veth, "tag") == "42"
    assert vsctl("get", "Interface", root_veth, "mtu_request") == "1450"
    # The host's IPv6 off on the bridge's own device and the uplink: nothing to reach it at.
    for device in (f"{prefix}br", root_veth):
        assert f"turned IPv6 off on {device} (instances cannot reach this host through it)" in (
            changes
        )
        with hostnet.route() as ipr:
            assert hostnet.ipv6_addresses(ipr, hostnet.find_link(ipr, device).index) == []
    assert bridge.ensure() == []
    status = bridge.status()
    assert (status.exists, status.managed, status.uplink, status.vlan) == (
        True, True, root_veth, 42,
    )  # fmt: skip


def test_ensure_makes_an_existing_bridge_fail_closed(ovs_bridge, prefix):
    vsctl("add-br", f"{prefix}br", "--", "set", "Bridge", f"{prefix}br", "datapath_type=netdev")
    assert "actions=NORMAL" in ofctl("dump-flows", f"{prefix}br")  # standalone: fails open
    bridge = ovs_bridge(openflow_listen="127.0.0.1:16999")
    changes = bridge.ensure()
    assert f"set fail_mode secure on {prefix}br (fails closed)" in changes
    assert changes[-1] == f"installed the flows of {prefix}br (default deny)"
    assert vsctl("get", "Bridge", f"{prefix}br", "fail_mode") == "secure"
    assert vsctl("get-controller", f"{prefix}br") == "ptcp:16999:127.0.0.1"
    assert "NORMAL" not in ofctl("dump-flows", f"{prefix}br")
    assert bridge.ensure() == []
    ofctl("del-flows", f"{prefix}br")  # flushed: ensure puts the base flows back
    assert bridge.ensure() == [f"installed the flows of {prefix}br (default deny)"]


def test_ensure_puts_back_a_changed_vlan_tag(ovs_bridge, root_veth):
    bridge = ovs_bridge(vlan=42)
    bridge.ensure()
    vsctl("set", "Port", root_veth, "tag=7")
    assert bridge.ensure() == [f"set VLAN tag of {root_veth} to 42"]
    assert vsctl("get", "Port", root_veth, "tag") == "42"


def test_teardown_refuses_with_instance_ports_then_removes(ovs_bridge, prefix):
    bridge = ovs_bridge()
    bridge.ensure()
    vsctl("add-port", f"{prefix}br", "cache-0123abcd", "--", "set", "Interface",
          "cache-0123abcd", "type=internal")  # fmt: skip
    with pytest.raises(BridgeError, match="still has instance ports"):
        bridge.teardown()
    assert bridge.teardown(force=True) == [f"removed OVS bridge {prefix}br"]
    assert f"{prefix}br" not in vsctl("list-br").split()


def test_instance_ports_are_made_protected_and_the_uplink_is_not(ovs_bridge, prefix, root_veth):
    bridge = ovs_bridge(device_prefix=f"{prefix}-")
    bridge.ensure()
    ports = [f"{prefix}-aaaaaaaa", f"{prefix}-bbbbbbbb"]
    for port in ports:
        vsctl("add-port", f"{prefix}br", port, "--", "set", "Interface", port, "type=internal")
    assert bridge.status().unisolated_ports == ports
    assert bridge.isolate_instance_ports() == ports
    assert bridge.status().unisolated_ports == []
    assert [vsctl("get", "Port", port, "protected") for port in ports] == ["true", "true"]
    assert vsctl("get", "Port", root_veth, "protected") == "false"  # cache nodes reach all
    assert bridge.isolate_instance_ports() == []  # nothing left to do


def test_with_isolation_off_instance_ports_stay_unprotected(ovs_bridge, prefix):
    bridge = ovs_bridge(device_prefix=f"{prefix}-", isolate_ports=False)
    bridge.ensure()
    port = f"{prefix}-aaaaaaaa"
    vsctl("add-port", f"{prefix}br", port, "--", "set", "Interface", port, "type=internal")
    assert bridge.isolate_instance_ports() == []
    assert vsctl("get", "Port", port, "protected") == "false"


def test_teardown_leaves_an_operators_bridge_alone(ovs_bridge, prefix):
    vsctl("add-br", f"{prefix}br", "--", "set", "Bridge", f"{prefix}br", "datapath_type=netdev")
    with pytest.raises(BridgeError, match="not created by cachenet"):
        ovs_bridge().teardown()


def test_uplink_on_another_ovs_bridge_is_an_error_and_nothing_is_made(ovs_bridge, prefix):
    vsctl("add-br", f"{prefix}other", "--", "set", "Bridge", f"{prefix}other",
          "datapath_type=netdev")  # fmt: skip
    vsctl("add-port", f"{prefix}other", f"{prefix}up")
    with pytest.raises(BridgeError, match=f"already a port of OVS bridge {prefix}other"):
        ovs_bridge().ensure()
    assert f"{prefix}br" not in vsctl("list-br").split()


def test_missing_uplink_is_an_error_and_nothing_is_made(ovs_bridge, prefix):
    with pytest.raises(BridgeError, match=f"uplink {prefix}zz does not exist"):
        ovs_bridge(uplink=f"{prefix}zz").ensure()
    assert f"{prefix}br" not in vsctl("list-br").split()


def test_a_kernel_device_with_the_bridge_name_is_an_error(ovs_bridge, prefix):
    netns.add_veth(f"{prefix}br", f"{prefix}brp")
    try:
        with pytest.raises(BridgeError, match="exists as a veth device"):
            ovs_bridge().ensure()
    finally:
        netns.delete_link(f"{prefix}br")


def test_ovsdb_not_running_is_a_quick_clear_error(prefix):
    settings = make_settings(bridge_type="ovs", ovsdb_connection=f"unix:/tmp/{prefix}/db.sock")
    started = time.monotonic()
    with pytest.raises(BridgeError, match="Open vSwitch database is not running"):
        OvsBridge(settings.bridge, settings.network).ensure()
    assert time.monotonic() - started < 5


def test_command_line_with_ovs(ovsdb, prefix, root_veth, tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(
        f"[cachenet]\nbridge_type = ovs\nbridge = {prefix}br\nuplink = {root_veth}\n"
        f"vlan = 5\ndatapath_type = netdev\novsdb_connection = {ovsdb}\n"
    )
    try:
        first = run_cachenet(conf, "bridge", "ensure")
        assert first.returncode == 0
        assert run_cachenet(conf, "bridge", "ensure").stdout.startswith("nothing to do")
        status = json.loads(run_cachenet(conf, "bridge", "status", "--json").stdout)
        assert (status["type"], status["vlan"], status["uplink"]) == ("ovs", 5, root_veth)
        assert run_cachenet(conf, "bridge", "teardown").returncode == 0
    finally:
        vsctl("--if-exists", "del-br", f"{prefix}br")
