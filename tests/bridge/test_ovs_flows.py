"""The OVS bridge's flows as rendered for ovs-ofctl (pure functions, no switch)."""

import ipaddress
from collections import Counter

from cachenet.bridge import ovs_flows
from cachenet.bridge.ovs_flows import Layout, SwitchPort

PORT = SwitchPort("cache-aaaa", 7, "fa:17:3e:00:00:01", ipaddress.IPv4Address("10.99.0.5"))
OTHER = SwitchPort("cache-bbbb", 9, "fa:17:3e:00:00:02", ipaddress.IPv4Address("10.99.0.6"))
LAYOUT = Layout(uplink_ofport=1, isolate=True, anti_spoofing=True)


def flows_of(layout, ports):
    groups = ovs_flows.base_groups(layout) + ovs_flows.port_groups(layout, ports)
    return [flow for group in groups for flow in group.flows]


def test_an_instance_port_may_send_only_with_its_own_mac_and_address():
    flows = [f for f in flows_of(LAYOUT, [PORT]) if "in_port=7" in f and "table=10" in f]
    assert flows == [
        "table=10,priority=200,in_port=7,udp,tp_src=67,tp_dst=68,actions=drop",
        "table=10,priority=100,in_port=7,dl_src=fa:17:3e:00:00:01,ip,nw_src=10.99.0.5,"
        "actions=goto_table:30",
        "table=10,priority=100,in_port=7,dl_src=fa:17:3e:00:00:01,udp,nw_src=0.0.0.0,"
        "tp_src=68,tp_dst=67,actions=goto_table:30",
        "table=10,priority=100,in_port=7,dl_src=fa:17:3e:00:00:01,arp,arp_spa=10.99.0.5,"
        "arp_sha=fa:17:3e:00:00:01,actions=goto_table:30",
    ]
    # everything else from the port, and any port without rules, is dropped
    assert "table=10,priority=0,actions=drop" in flows_of(LAYOUT, [PORT])
    assert "table=0,priority=0,actions=drop" in flows_of(LAYOUT, [PORT])


def test_isolated_instances_send_to_the_uplink_and_the_host_only():
    assert "table=30,priority=0,actions=output:LOCAL,output:1" in flows_of(LAYOUT, [PORT])
    shared = Layout(uplink_ofport=1, isolate=False, anti_spoofing=True)
    assert all("goto_table:30" not in f for f in flows_of(shared, [PORT]))


def test_unicast_reaches_only_the_port_owning_the_mac_broadcast_reaches_all():
    flows = flows_of(LAYOUT, [PORT, OTHER])
    assert "table=40,priority=100,dl_dst=fa:17:3e:00:00:01,actions=output:7" in flows
    assert "table=40,priority=100,dl_dst=fa:17:3e:00:00:02,actions=output:9" in flows
    assert (
        "table=40,priority=20,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,"
        "actions=output:LOCAL,output:1,output:7,output:9"
    ) in flows
    assert "table=40,priority=0,actions=output:LOCAL,output:1" in flows  # other unicast


def test_without_anti_spoofing_a_port_passes_everything_to_isolation():
    layout = Layout(uplink_ofport=1, isolate=True, anti_spoofing=False)
    flows = [f for f in flows_of(layout, [PORT]) if "table=10" in f and "in_port=7" in f]
    assert flows == ["table=10,priority=100,in_port=7,actions=goto_table:30"]


def test_an_access_uplink_drops_tagged_frames():
    tagged = "table=0,priority=110,in_port=1,vlan_tci=0x1000/0x1000,actions=drop"
    assert tagged in flows_of(Layout(1, True, True, vlan=42), [])
    assert tagged not in flows_of(LAYOUT, [])


def test_cookies_carry_the_mark_the_kind_and_the_port():
    group = ovs_flows.port_groups(LAYOUT, [PORT])[0]
    assert group.cookie & ovs_flows.COOKIE_MARK_MASK == ovs_flows.COOKIE_MARK
    assert ovs_flows.cookie_kind(group.cookie) == ovs_flows.KIND_PORT
    assert ovs_flows.cookie_ofport(group.cookie) == 7
    moved = SwitchPort(PORT.device, 7, PORT.mac, ipaddress.IPv4Address("10.99.0.9"))
    assert ovs_flows.port_groups(LAYOUT, [moved])[0].cookie != group.cookie


def present(groups):
    return Counter({g.cookie: len(g.flows) for g in groups})


def test_a_bridge_as_wanted_needs_no_change():
    wanted = ovs_flows.base_groups(LAYOUT) + ovs_flows.port_groups(LAYOUT, [PORT])
    assert not ovs_flows.plan(wanted, present(wanted), {ovs_flows.KIND_PORT})


def test_new_ports_are_added_and_gone_ports_removed_in_one_bundle():
    before = ovs_flows.base_groups(LAYOUT) + ovs_flows.port_groups(LAYOUT, [PORT])
    after = ovs_flows.base_groups(LAYOUT) + ovs_flows.port_groups(LAYOUT, [OTHER])
    kinds = {ovs_flows.KIND_PORT, ovs_flows.KIND_FLOOD}
    plan = ovs_flows.plan(after, present(before), kinds)
    old_port, old_flood = ovs_flows.port_groups(LAYOUT, [PORT])
    assert sorted(plan.delete) == sorted([old_port.cookie, old_flood.cookie])
    assert [g.ofport for g in plan.add] == [9, 0]
    bundle = plan.bundle().splitlines()
    assert bundle[0].startswith("delete cookie=0xcac7")  # deletions first
    assert bundle[-1].startswith(f"add cookie={plan.add[-1].cookie:#x},table=40")


def test_a_group_missing_flows_is_replaced():
    wanted = ovs_flows.port_groups(LAYOUT, [PORT])
    partial = present(wanted)
    partial[wanted[0].cookie] -= 1  # someone deleted one flow by hand
    plan = ovs_flows.plan(wanted, partial, {ovs_flows.KIND_PORT})
    assert plan.delete == [wanted[0].cookie]
    assert plan.add == [wanted[0]]


def test_present_cookies_keeps_cachenets_flows_only():
    dump = (
        " cookie=0xcac7030007000001, table=10, priority=100 actions=drop\n"
        " cookie=0x0, priority=0 actions=NORMAL\n"
        " cookie=0xcac7030007000001, table=40, priority=100 actions=output:7\n"
    )
    assert ovs_flows.present_cookies(dump) == Counter({0xCAC7030007000001: 2})


def test_ipv6_only_from_the_eui64_and_link_local_addresses_no_rogue_router_or_dhcpv6():
    from cachenet import ipv6

    sources = ipv6.allowed_sources(PORT.mac, [ipaddress.IPv6Network("fd00:99::/64")])
    dual = SwitchPort(PORT.device, PORT.ofport, PORT.mac, PORT.address, sources)
    flows = [f for f in flows_of(LAYOUT, [dual]) if "table=10" in f and "in_port=7" in f]
    ipv6_flows = [f for f in flows if "icmp6" in f or "ipv6" in f or "udp6" in f]
    prefix, mac, onward = "table=10,in_port=7", PORT.mac, "actions=goto_table:30"
    global6, local6 = "fd00:99::f817:3eff:fe00:1", "fe80::f817:3eff:fe00:1"
    assert f"{prefix},priority=200,icmp6,icmp_type=134,actions=drop" in ipv6_flows  # RA
    assert f"{prefix},priority=200,icmp6,icmp_type=137,actions=drop" in ipv6_flows  # redirect
    assert f"{prefix},priority=200,udp6,tp_src=547,actions=drop" in ipv6_flows  # DHCPv6 reply
    assert f"{prefix},priority=150,icmp6,icmp_type=136,actions=drop" in ipv6_flows  # other NAs
    for address in (global6, local6):
        assert f"{prefix},priority=100,dl_src={mac},ipv6,ipv6_src={address},{onward}" in flows
        assert (
            f"{prefix},priority=160,dl_src={mac},icmp6,icmp_type=136,ipv6_src={address},"
            f"nd_target={address},{onward}"
        ) in flows
        assert (
            f"{prefix},priority=100,dl_src={mac},icmp6,ipv6_src=::,icmp_type=135,"
            f"nd_target={address},{onward}"
        ) in flows  # duplicate address detection
    accepted = [f for f in ipv6_flows if f.endswith(onward)]
    assert len(accepted) == 2 + 4 + 2 + 1  # sources, NA source x target, DAD, MLDv2 report


def test_an_ipv4_only_pool_has_no_ipv6_flows():
    assert all("ipv6" not in f and "icmp6" not in f for f in flows_of(LAYOUT, [PORT]))


def test_an_ipv6_only_port_sends_no_ipv4_no_arp_and_no_dhcp_request():
    from cachenet import ipv6

    sources = ipv6.allowed_sources(PORT.mac, [ipaddress.IPv6Network("fd00:99::/64")])
    v6only = SwitchPort(PORT.device, PORT.ofport, PORT.mac, None, sources)
    flows = [f for f in flows_of(LAYOUT, [v6only]) if "table=10" in f and "in_port=7" in f]
    accepted = [f for f in flows if f.endswith("actions=goto_table:30")]
    assert accepted and all("icmp6" in f or "ipv6" in f for f in accepted), accepted
    assert not any(",ip," in f or ",arp," in f or "nw_src" in f for f in flows)
    assert "table=10,priority=0,actions=drop" in flows_of(LAYOUT, [v6only])  # takes them
