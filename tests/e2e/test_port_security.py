"""Port security with real VMs: misbehaving guests beside a well-behaved one.

One guest misbehaves in every way at once, each leaving its own trace: it
switches to a free address and pings the cache node, does the same with another
MAC, keeps claiming the cache node's and the good guest's addresses by
gratuitous ARP, and serves DHCP. Then a well-behaved guest boots on the same
bridge. What a user would check: the good guest gets its reserved address from
the real server and reaches the cache node, not the misbehaving guest; the cache
node answers none of the forged traffic, its neighbour table still sends the
good guest's address to the good guest's MAC, and a DHCP client on the node's
own NIC gets no offer from the rogue server.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import pytest

from harness import ovs
from harness.lab import (
    NODE_ADDRESS,
    CacheLab,
    behaviour,
    lease_of,
    node_neighbour_of,
    outcome,
    reached,
    server_of,
)
from harness.wait import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

SPOOFED_ADDRESS = "10.77.0.200"  # free: outside the store's allocations so far
SPOOFED_MAC = "02:00:00:77:00:99"
ROGUE_POOL = "10.77.0.100"
RECONCILE_INTERVAL = 3  # seconds (agent_reconcile_interval)


@dataclass
class Observed:
    good_port: dict[str, str]
    bad_port: dict[str, str]
    good: list[str]  # the good guest's report
    bad: list[str]  # the misbehaving guest's report
    node_mac: str
    rogue_offer_to_node: str | None  # what a DHCP client on the node got
    node_sends_good_address_to: str | None  # its neighbour entry for the good guest


def misbehave_beside_a_good_guest(lab: CacheLab) -> Observed:
    good_port, bad_port = lab.allocate(), lab.allocate()
    misbehaviours = [
        f"spoof-ip:{SPOOFED_ADDRESS}",
        f"spoof-mac:{SPOOFED_MAC}",
        f"garp:{NODE_ADDRESS}",
        f"garp:{good_port['address']}",
        f"rogue-dhcp:{ROGUE_POOL}",
    ]
    bad = lab.define("bad", uuid=bad_port["instance_uuid"], behave=",".join(misbehaviours),
                     linger="300")  # fmt: skip
    # linger: the good guest's neighbour table is read after bad's ARP claims had time.
    good = lab.define("good", uuid=good_port["instance_uuid"],
                      behave=f"reach:{bad_port['address']}", linger="3")  # fmt: skip
    for domain in (bad, good):
        lab.cachenet("attach", domain.name(), check=True)
    # As if the node had talked to the good guest before: forged ARP would override it.
    lab.seed_node_neighbour(good_port["address"], good_port["mac"])

    bad.create()
    wait_for(lambda: behaviour(lab.report(bad.name()), "rogue-dhcp") is not None,
                 "the misbehaving guest to run its DHCP server", 150)  # fmt: skip
    rogue_offer = lab.dhcp_offer_to_node()
    good.create()  # it asks for its lease while the rogue server is serving
    good_report = lab.wait_done(good.name(), 150)
    return Observed(
        good_port=good_port,
        bad_port=bad_port,
        good=good_report,
        bad=lab.report(bad.name()),
        node_mac=lab.node_mac(),
        rogue_offer_to_node=rogue_offer,
        node_sends_good_address_to=lab.node_neighbour(good_port["address"]),
    )


def assert_the_misbehaviour_happened(seen: Observed) -> None:
    """The guest really did all of it (else a pass would prove nothing)."""
    assert behaviour(seen.bad, "spoof-ip") is not None, seen.bad
    assert behaviour(seen.bad, "spoof-mac") is not None, seen.bad
    assert behaviour(seen.bad, "garp") == "claiming", seen.bad
    assert behaviour(seen.bad, "rogue-dhcp") == "serving", seen.bad


@pytest.mark.parametrize("bridge_type", ["linuxbridge", "ovs"])
def test_misbehaving_guest_neither_reaches_nor_poisons_the_node_or_a_good_guest(
    make_lab, bridge_type
):
    lab = make_lab(bridge_type, agent_reconcile_interval=str(RECONCILE_INTERVAL))
    lab.start_agent()
    seen = misbehave_beside_a_good_guest(lab)
    assert_the_misbehaviour_happened(seen)
    good, bad = seen.good_port, seen.bad_port
    # The misbehaving guest as itself still works; forged, the node never answers it.
    assert outcome(seen.bad, "PING") == "ok", seen.bad
    assert behaviour(seen.bad, "spoof-ip") == "no", seen.bad
    assert behaviour(seen.bad, "spoof-mac") == "no", seen.bad
    # The claims to the good guest's address did not reach the node's neighbour table.
    assert seen.node_sends_good_address_to == good["mac"]
    # The good guest: its reserved address from the real server, the node reached,
    # the node's real MAC in its table, the misbehaving guest unreachable.
    assert lease_of(seen.good) == (good["address"], good["mac"]), seen.good
    assert server_of(seen.good) == NODE_ADDRESS, seen.good
    assert outcome(seen.good, "PING") == "ok", seen.good
    assert node_neighbour_of(seen.good) == seen.node_mac, seen.good
    assert reached(seen.good) == {bad["address"]: False}, seen.good
    # No rogue DHCP offer gets out of the misbehaving guest.
    assert seen.rogue_offer_to_node is None


def test_without_port_security_the_same_guest_gets_through(make_lab):
    """The control for the test above: protections off, every check sees the harm."""
    lab = make_lab("linuxbridge", isolate_ports="false", anti_spoofing="false")
    seen = misbehave_beside_a_good_guest(lab)
    assert_the_misbehaviour_happened(seen)
    assert behaviour(seen.bad, "spoof-ip") == "yes", seen.bad
    assert behaviour(seen.bad, "spoof-mac") == "yes", seen.bad
    assert seen.node_sends_good_address_to == seen.bad_port["mac"]
    assert seen.rogue_offer_to_node is not None
    assert seen.rogue_offer_to_node.endswith(f"from {seen.bad_port['address']}")
    assert reached(seen.good) == {seen.bad_port["address"]: True}, seen.good
    assert node_neighbour_of(seen.good) == seen.bad_port["mac"], seen.good


# --- Open vSwitch restarts -----------------------------------------------------------


def flows(bridge: str) -> list[str] | None:
    """The bridge's OpenFlow rules without counters, sorted; None while unreachable."""
    try:
        dump = ovs.ofctl("-O", "OpenFlow10,OpenFlow13,OpenFlow15", "--no-stats", "dump-flows",
                         bridge)  # fmt: skip
    except subprocess.CalledProcessError:
        return None
    return sorted(line.strip() for line in dump.splitlines() if "actions=" in line)


def test_after_ovs_vswitchd_restarts_the_rules_are_back_and_spoofing_stays_blocked(make_lab):
    lab = make_lab("ovs", agent_reconcile_interval=str(RECONCILE_INTERVAL))
    lab.start_agent()
    # The guest pauses while ovs-vswitchd restarts, then uses the network and misbehaves.
    bad = lab.define("bad", behave=",".join([
        "pause:25", f"reach:{NODE_ADDRESS}", f"spoof-ip:{SPOOFED_ADDRESS}",
        f"spoof-mac:{SPOOFED_MAC}", f"rogue-dhcp:{ROGUE_POOL}",
    ]), linger="300")  # fmt: skip
    lab.cachenet("attach", bad.name(), check=True)
    bad.create()
    wait_for(lambda: outcome(lab.report(bad.name()), "PING") is not None, "its ping", 150)
    assert outcome(lab.report(bad.name()), "PING") == "ok"
    secured = flows(lab.bridge)
    assert secured

    ovs.restart_vswitchd()
    restarted = time.monotonic()
    wait_for(lambda: flows(lab.bridge) == secured, "the rules to come back",
                 RECONCILE_INTERVAL + 5)  # fmt: skip
    restored_after = time.monotonic() - restarted
    assert restored_after <= RECONCILE_INTERVAL + 2, restored_after

    wait_for(lambda: behaviour(lab.report(bad.name()), "rogue-dhcp") is not None,
                 "the guest to misbehave", 120)  # fmt: skip
    report = lab.report(bad.name())
    assert reached(report) == {NODE_ADDRESS: True}, report  # its own traffic flows again
    assert behaviour(report, "spoof-ip") == "no", report
    assert behaviour(report, "spoof-mac") == "no", report
    assert behaviour(report, "rogue-dhcp") == "serving", report
    assert lab.dhcp_offer_to_node() is None
