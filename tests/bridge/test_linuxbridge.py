"""The Linux bridge backend against the real kernel, each test in its own namespace."""

import json
import subprocess

import pytest
from pyroute2 import NetNS

from cachenet import hostnet
from cachenet.bridge.linuxbridge import LinuxBridge
from cachenet.errors import BridgeError
from cachenet.settings import make_settings
from harness.cli import run_cachenet
from harness.wait import wait_for

pytestmark = pytest.mark.root


def link(ns, name):
    with NetNS(ns) as ipr:
        found = ipr.link_lookup(ifname=name)
        return ipr.get_links(found[0])[0] if found else None


def backend(ns, prefix, **overrides):
    settings = make_settings(**{"bridge": f"{prefix}br", "uplink": f"{prefix}up", **overrides})
    return LinuxBridge(settings.bridge, settings.network, netns=ns)


def test_ensure_builds_the_bridge_with_its_uplink_and_is_idempotent(ns, prefix):
    bridge = backend(ns, prefix, mtu=9000)
    changes = bridge.ensure()
    assert f"created Linux bridge {prefix}br" in changes
    # Port security's table, default deny for instance devices, from the start.
    assert changes[-1] == "created nftables table bridge cachenet (0 instance ports)"
    br, up = link(ns, f"{prefix}br"), link(ns, f"{prefix}up")
    assert br.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "bridge"
    assert br["flags"] & 1 and up["flags"] & 1  # both up
    assert up.get_attr("IFLA_MASTER") == br["index"]
    assert br.get_attr("IFLA_MTU") == 9000 and up.get_attr("IFLA_MTU") == 9000
    assert bridge.ensure() == []
    status = bridge.status()
    assert (status.exists, status.managed, status.mtu, status.uplink) == (
        True, True, 9000, f"{prefix}up",
    )  # fmt: skip


def ipv6_of(ns, device):
    """``device``'s IPv6 addresses in ``ns`` (its link-local one included)."""
    with hostnet.route(ns) as ipr:
        return hostnet.ipv6_addresses(ipr, hostnet.find_link(ipr, device).index)


def test_ensure_turns_the_hosts_ipv6_off_on_the_bridge_and_uplink(ns, prefix):
    """No address for an instance to reach the host at, not even a link-local one."""
    bridge = backend(ns, prefix)
    changes = bridge.ensure()
    for device in (f"{prefix}br", f"{prefix}up"):
        assert f"turned IPv6 off on {device} (instances cannot reach this host through it)" in (
            changes
        )
        assert ipv6_of(ns, device) == []
    assert bridge.ensure() == []


def test_a_dhcp_node_serving_on_the_bridge_keeps_its_ipv6_there(ns, prefix):
    bridge = backend(ns, prefix)
    changes = bridge.ensure(host_on_bridge=True)
    assert not any(f"IPv6 off on {prefix}br " in change for change in changes), changes
    wait_for(lambda: ipv6_of(ns, f"{prefix}br"), "the bridge's link-local address", 5)
    assert ipv6_of(ns, f"{prefix}up") == []


def test_ensure_repairs_a_bridge_that_went_down(ns, prefix):
    bridge = backend(ns, prefix)
    bridge.ensure()
    with NetNS(ns) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname=f"{prefix}br")[0], state="down")
    assert bridge.ensure() == [f"set {prefix}br up"]


def test_teardown_removes_only_what_cachenet_made(ns, prefix):
    bridge = backend(ns, prefix)
    bridge.ensure()
    assert bridge.teardown() == [
        f"removed Linux bridge {prefix}br",
        "removed nftables table bridge cachenet",
    ]
    assert link(ns, f"{prefix}br") is None
    uplink = link(ns, f"{prefix}up")
    assert uplink is not None and not uplink.get_attr("IFLA_MASTER")
    assert bridge.teardown() == []
    with NetNS(ns) as ipr:  # an operator's own bridge of the same name
        ipr.link("add", ifname=f"{prefix}br", kind="bridge")
    with pytest.raises(BridgeError, match="not created by cachenet"):
        bridge.teardown()
    assert link(ns, f"{prefix}br") is not None


def test_teardown_refuses_while_instance_ports_are_attached(ns, prefix):
    bridge = backend(ns, prefix, device_prefix="cache-")
    bridge.ensure()
    with NetNS(ns) as ipr:
        ipr.link("add", ifname="cache-0123abcd", kind="veth", peer=f"{prefix}vm")
        br = ipr.link_lookup(ifname=f"{prefix}br")[0]
        ipr.link("set", index=ipr.link_lookup(ifname="cache-0123abcd")[0], master=br)
    assert bridge.status().instance_ports == ["cache-0123abcd"]
    with pytest.raises(BridgeError, match=r"still has instance ports \(cache-0123abcd\)"):
        bridge.teardown()
    assert link(ns, f"{prefix}br") is not None
    assert bridge.teardown(force=True)[0] == f"removed Linux bridge {prefix}br"


def test_status_names_the_instance_ports_that_are_not_isolated(ns, prefix):
    bridge = backend(ns, prefix, device_prefix="cache-")
    bridge.ensure()
    with NetNS(ns) as ipr:
        br = ipr.link_lookup(ifname=f"{prefix}br")[0]
        for n, port in enumerate(["cache-0000000a", "cache-0000000b"]):
            ipr.link("add", ifname=port, kind="veth", peer=f"{prefix}vm{n}")
            ipr.link("set", index=ipr.link_lookup(ifname=port)[0], master=br)
    status = bridge.status()
    assert status.instance_ports == ["cache-0000000a", "cache-0000000b"]
    assert status.unisolated_ports == []  # the table isolates every device under the prefix
    # Without the table (flushed by hand, say), nothing isolates them.
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "bridge", "cachenet"],
                   check=True)  # fmt: skip
    assert bridge.status().unisolated_ports == ["cache-0000000a", "cache-0000000b"]


def test_missing_uplink_is_an_error_and_leaves_no_bridge(ns, prefix):
    bridge = backend(ns, prefix, uplink=f"{prefix}nope")
    with pytest.raises(BridgeError, match=f"uplink {prefix}nope does not exist"):
        bridge.ensure()
    assert link(ns, f"{prefix}br") is None


def test_uplink_enslaved_elsewhere_is_an_error_and_leaves_no_bridge(ns, prefix):
    with NetNS(ns) as ipr:
        ipr.link("add", ifname=f"{prefix}other", kind="bridge")
        other = ipr.link_lookup(ifname=f"{prefix}other")[0]
        ipr.link("set", index=ipr.link_lookup(ifname=f"{prefix}up")[0], master=other)
    with pytest.raises(BridgeError, match=f"already enslaved to {prefix}other"):
        backend(ns, prefix).ensure()
    assert link(ns, f"{prefix}br") is None


def test_a_name_taken_by_another_kind_of_device_is_an_error(ns, prefix):
    bridge = backend(ns, prefix, bridge=f"{prefix}peer")
    with pytest.raises(BridgeError, match="is a veth device, not a bridge"):
        bridge.ensure()
    assert link(ns, f"{prefix}up").get_attr("IFLA_MASTER") in (None, 0)


def test_command_line_ensure_status_teardown(ns, prefix, tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\nbridge = {prefix}br\nuplink = {prefix}up\nmtu = 1400\n")
    first = run_cachenet(conf, "bridge", "ensure", ns=ns)
    assert first.stderr == ""  # isolation and anti-spoofing hold on a Linux bridge
    assert first.returncode == 0 and f"created Linux bridge {prefix}br" in first.stdout
    assert "created nftables table bridge cachenet" in first.stdout
    assert f"turned IPv6 off on {prefix}br " in first.stdout
    second = run_cachenet(conf, "bridge", "ensure", ns=ns)
    assert second.stdout.startswith("nothing to do")
    status = json.loads(run_cachenet(conf, "bridge", "status", "--json", ns=ns).stdout)
    assert status["type"] == "linuxbridge" and status["mtu"] == 1400
    assert status["uplink"] == f"{prefix}up" and status["uplink_state"] is not None
    assert run_cachenet(conf, "bridge", "teardown", ns=ns).returncode == 0
    conf.write_text(f"[cachenet]\nbridge = {prefix}br\nuplink = {prefix}zz\n")
    failed = run_cachenet(conf, "bridge", "ensure", ns=ns)
    assert failed.returncode == 2
    assert failed.stderr.strip() == f"cachenet: error: uplink {prefix}zz does not exist"


def test_command_line_ensure_on_the_dhcp_node_serving_on_the_bridge(ns, prefix, tmp_path):
    conf = tmp_path / "cachenet.conf"
    conf.write_text(f"[cachenet]\nbridge = {prefix}br\nuplink = {prefix}up\n"
                    f"dhcp_interface = {prefix}br\n")  # fmt: skip
    done = run_cachenet(conf, "bridge", "ensure", ns=ns)
    assert done.returncode == 0, done.stderr
    assert f"turned IPv6 off on {prefix}up " in done.stdout
    assert f"IPv6 off on {prefix}br " not in done.stdout  # dnsmasq announces prefixes on it
