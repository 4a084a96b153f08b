"""Two `cachenet dhcp serve` on one cache network (real dnsmasq, busybox udhcpc):
no server NAKs the other's clients, and when one node dies its clients keep
their addresses from the other."""

import json
import signal
import uuid

import pytest

from harness.wait import WaitTimeout, wait_for

pytestmark = pytest.mark.root


def allocate(network):
    result = network.cachenet("ports", "allocate", str(uuid.uuid4()), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def rebinds_to(network, client, process, seconds=4.0):
    """SIGUSR1: busybox udhcpc broadcasts a REQUEST for its address (a rebind: the
    lease's time to T1 is capped at 60 s, which skips the unicast renew). The
    address it holds after ``seconds``, or None if it lost it or got no answer."""
    before = len(network.client_events(client))
    process.send_signal(signal.SIGUSR1)

    def outcome():
        new = network.client_events(client)[before:]
        return [event for event in new if event.startswith(("deconfig", "renew "))]

    try:
        events = wait_for(outcome, "an answer to the rebind", seconds)
    except WaitTimeout:
        return None  # no answer
    if any(event.startswith("deconfig") for event in events):
        return None
    return events[-1].split()[1]


@pytest.fixture
def two_servers(shared_cache_network):
    network = shared_cache_network
    network.configure(reserved="10.77.0.1-10.77.0.9")
    a, b = network.node("a", "10.77.0.2"), network.node("b", "10.77.0.3")
    return network, a, b


def test_two_servers_nak_no_client_and_the_survivor_acks_every_rebind(two_servers):
    network, a, b = two_servers
    early = [allocate(network) for _ in range(2)]
    a.start()
    b.start()
    late = allocate(network)  # after both servers started: no seed in either lease file yet
    # Both answer the first client: whichever offer it takes, nobody NAKs.
    first = network.client(early[0]["mac"])
    held = {first: (network.hold(first), early[0])}
    # The others are leased by a alone, so that b never saw them.
    b.link("down")
    for port in (early[1], late):
        client = network.client(port["mac"])
        held[client] = (network.hold(client), port)
    b.link("up")
    for client, ((_, address), port) in held.items():
        assert address == port["address"]
        assert a.logged(f"DHCPACK(eth0) {address}") or client == first
    for client, ((process, _), port) in held.items():  # both alive: rebinds ACKed
        assert rebinds_to(network, client, process) == port["address"], client
    for node in (a, b):
        assert not node.logged("DHCPNAK"), node.log.read_text()

    # b learns of the late port's lease within seconds (it restarts dnsmasq to seed it).
    wait_for(lambda: b.logged("restarting dnsmasq to seed"), "b to seed the late port", 15)
    a.kill()
    for client, ((process, _), port) in held.items():
        assert rebinds_to(network, client, process) == port["address"], client
    assert not b.logged("DHCPNAK"), b.log.read_text()
