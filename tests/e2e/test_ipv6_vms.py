"""Real VMs on a dual-stack cache network, on both bridge types.

Two test guests boot at once on a pool with an IPv4 subnet and an IPv6 prefix.
Each gets its reserved IPv4 address by DHCP from the cache node, and from the
node's router advertisements (``cachenet dhcp serve``) exactly the EUI-64
address the store records for its port, with no IPv6 default route; it reaches
the node on both families. One guest then tries the other (isolation) and uses
a forged IPv6 source address beside its own: the cache node and the other guest
answer none of it. Last it sends router advertisements (radvd) offering another
prefix and a default route: the cache node learns neither. The control, with
port security off, shows the same forged traffic getting through and the node
taking the rogue route and prefix: the rules are what stops them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from cachenet import ipv6
from harness.lab import (
    DUAL_STACK,
    CacheLab,
    behaviour,
    ipv6_addresses_of,
    ipv6_default_route_of,
    lease_of,
    outcome,
    reached,
    reached_from,
    server_of,
)
from harness.wait import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

BRIDGE_TYPES = ["linuxbridge", "ovs"]
POOLS = {"dual-stack": DUAL_STACK}
MakeLab = Callable[..., CacheLab]  # the make_lab fixture
FORGED_INTERFACE_ID = 0xBAD  # no MAC's EUI-64: an address no port may use
ROGUE_PREFIX = ipaddress.IPv6Network("fd00:66::/64")
ROGUE_RA_SECONDS = 9  # radvd announces at once, then every 3-4 s: three advertisements


@dataclass
class Node:
    """What the cache node learned from router advertisements (its own are not heard)."""

    default_route: str  # "" for none
    rogue_addresses: list[str]  # its SLAAC addresses in ROGUE_PREFIX


@dataclass
class Guest:
    port: dict[str, Any]  # as `ports show --json` gives it
    report: list[str]

    @property
    def ipv4(self) -> str | None:
        return self.port.get("address")

    @property
    def ipv6(self) -> list[str]:
        return list(self.port["ipv6_addresses"])

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.ipv4, *self.ipv6) if a]


def run_pair(lab: CacheLab) -> tuple[Guest, Guest, Node]:
    """Guest a stays up; guest b, once a is up, pings a on each family, pings the node
    and a from a forged IPv6 address of the prefix, then sends router advertisements."""
    a_port, b_port = lab.allocate(), lab.allocate()
    a_addresses = Guest(a_port, []).addresses
    a = lab.define("a", uuid=a_port["instance_uuid"], linger="300")
    b = lab.define("b", uuid=b_port["instance_uuid"], behave=",".join([
        f"await:{lab.go_address()}", f"reach:{'+'.join(a_addresses)}",
        f"spoof-ip6:{forged_address(lab)}+{a_port['ipv6_addresses'][0]}",
        f"rogue-ra:{ROGUE_PREFIX}", f"pause:{ROGUE_RA_SECONDS}",
    ]))  # fmt: skip
    for domain in (a, b):
        lab.cachenet("attach", domain.name(), check=True)
    a.create()
    b.create()
    wait_for(lambda: outcome(lab.report(a.name()), "PING6") is not None, "a to be up", 150)
    lab.signal_guests()  # b goes on with a up and addressed
    b_report = lab.wait_done(b.name(), 150)
    node = Node(lab.node_ipv6_default_route(), lab.node_addresses_in(str(ROGUE_PREFIX)))
    a_guest = Guest(show(lab, a_port), lab.report(a.name()))
    return a_guest, Guest(show(lab, b_port), b_report), node


def show(lab: CacheLab, port: dict[str, Any]) -> dict[str, Any]:
    """The port as the store records it (``cachenet ports show``)."""
    shown: dict[str, Any] = json.loads(
        lab.cachenet("ports", "show", port["instance_uuid"], "--json", check=True)
    )
    return shown


def assert_addressed_and_reaching_the_node(lab: CacheLab, guest: Guest) -> None:
    """What the guest holds is what the store records, and the node answers on each family."""
    prefixes = [n for n in lab.subnets if isinstance(n, ipaddress.IPv6Network)]
    # The store's record is the EUI-64 of the port's MAC, and SLAAC gave the guest just that.
    expected = [str(ipv6.eui64_address(p, guest.port["mac"])) for p in prefixes]
    assert guest.ipv6 == expected, guest.port
    assert ipv6_addresses_of(guest.report) == guest.ipv6, guest.report
    assert ipv6_default_route_of(guest.report) == "none", guest.report
    assert outcome(guest.report, "PING6") == "ok", guest.report
    if lab.node_addresses(4):  # DHCPv4 as on an IPv4-only pool
        assert lease_of(guest.report) == (guest.ipv4, guest.port["mac"]), guest.report
        assert server_of(guest.report) == lab.node_addresses(4)[0], guest.report
        assert outcome(guest.report, "PING") == "ok", guest.report


def forged_address(lab: CacheLab) -> str:
    return str(lab.subnets[-1][FORGED_INTERFACE_ID])


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("bridge_type", BRIDGE_TYPES)
def test_vms_hold_their_addresses_reach_the_node_and_cannot_forge_ipv6(
    make_lab: MakeLab, bridge_type: str, pool: str
) -> None:
    lab = make_lab(bridge_type, subnets=POOLS[pool])
    lab.start_agent()  # on OVS it gives started domains' ports their flows
    a, b, node = run_pair(lab)
    for guest in (a, b):
        assert_addressed_and_reaching_the_node(lab, guest)
    # Instances do not reach each other on either family...
    assert reached(b.report) == dict.fromkeys(a.addresses, False), b.report
    # ...and a forged IPv6 source reaches neither the node nor another instance.
    assert reached_from(b.report, "spoof-ip6", forged_address(lab)) == {
        "cache-node": False,
        a.ipv6[0]: False,
    }, b.report
    # Its router advertisements went out, and the node took neither route nor prefix.
    assert behaviour(b.report, "rogue-ra") == "announcing", b.report
    assert node == Node(default_route="", rogue_addresses=[])
    # The compute host heard the node's advertisements too, and holds no address an
    # instance could reach it at: `bridge ensure` turned its IPv6 off there.
    assert lab.host_ipv6_addresses() == {lab.bridge: [], lab.uplink: []}


def test_without_port_security_the_forged_ipv6_traffic_gets_through(make_lab: MakeLab) -> None:
    """The control for the test above: the same guests, protections off."""
    lab = make_lab("linuxbridge", subnets=DUAL_STACK, isolate_ports="false",
                   anti_spoofing="false")  # fmt: skip
    a, b, node = run_pair(lab)
    assert ipv6_addresses_of(b.report) == b.ipv6, b.report
    assert reached(b.report) == dict.fromkeys(a.addresses, True), b.report
    assert reached_from(b.report, "spoof-ip6", forged_address(lab)) == {
        "cache-node": True,
        a.ipv6[0]: True,
    }, b.report
    b_link_local = str(ipv6.link_local_address(b.port["mac"]))
    assert node.default_route.startswith(f"default via {b_link_local} "), node
    assert node.rogue_addresses == [str(ipv6.eui64_address(ROGUE_PREFIX, lab.node_mac()))]
