"""Real dnsmasq, real DHCP clients (busybox udhcpc) in namespaces, the store on SQLite."""

import json
import os
import signal
import time
import uuid

import pytest

from harness import databases
from harness.wait import wait_for

pytestmark = pytest.mark.root


def allocate(network, instance=None):
    instance = instance or str(uuid.uuid4())
    result = network.cachenet("ports", "allocate", instance, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_reserved_mac_gets_exactly_its_address_and_an_unknown_mac_none(cache_network):
    port = allocate(cache_network)
    cache_network.start_server()
    assert cache_network.lease(cache_network.client(port["mac"])) == port["address"]
    assert cache_network.lease(cache_network.client("fa:17:3e:99:99:99"), tries=2) is None
    leases = json.loads(cache_network.cachenet("dhcp", "leases", "--json").stdout)
    assert [(lease["mac"], lease["address"], lease["instance_uuid"]) for lease in leases] == [
        (port["mac"], port["address"], port["instance_uuid"])
    ]


def test_a_port_allocated_while_serving_is_served_within_a_second(cache_network):
    cache_network.start_server()
    started = time.monotonic()
    port = allocate(cache_network)
    wait_for(
        lambda: cache_network.reservation(port["instance_uuid"]).exists(), "the reservation", 1.0
    )
    assert time.monotonic() - started < 2.0  # includes starting the allocating process
    assert cache_network.lease(cache_network.client(port["mac"])) == port["address"]


def test_a_released_port_stops_being_served(cache_network):
    port = allocate(cache_network)
    cache_network.start_server()
    assert cache_network.lease(cache_network.client(port["mac"])) == port["address"]
    assert cache_network.cachenet("ports", "release", port["instance_uuid"]).returncode == 0
    wait_for(lambda: not cache_network.reservation(port["instance_uuid"]).exists(), "removal", 1.0)
    time.sleep(0.3)  # the SIGHUP that makes dnsmasq forget it follows the removal
    assert cache_network.lease(cache_network.client(port["mac"]), tries=2) is None


def test_dnsmasq_is_restarted_when_it_dies(cache_network):
    port = allocate(cache_network)
    cache_network.start_server()
    first = cache_network.dnsmasq_pid()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: cache_network.dnsmasq_pid() not in (None, first), "a new dnsmasq", 10)
    assert cache_network.lease(cache_network.client(port["mac"])) == port["address"]


def test_sigterm_stops_dnsmasq_too(cache_network):
    cache_network.start_server()
    pid = cache_network.dnsmasq_pid()
    cache_network.stop_server()
    assert cache_network.server.returncode == 0
    assert not os.path.exists(f"/proc/{pid}")


def test_sync_once_writes_every_reservation_atomically(cache_network):
    ports = [allocate(cache_network) for _ in range(3)]
    result = cache_network.cachenet("dhcp", "sync", "--once")
    assert result.returncode == 0 and result.stdout.startswith("3 reservations")
    hosts = cache_network.state_dir / "hosts"
    assert sorted(p.name for p in hosts.iterdir()) == sorted(
        f"{p['instance_uuid']}.conf" for p in ports
    )
    first = ports[0]
    assert cache_network.reservation(first["instance_uuid"]).read_text() == (
        f"{first['mac']},{first['address']},{first['device']}\n"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("dhcp_interface = nope0\n", "interface nope0 does not exist"),
        ("dhcp_interface = lo\n", "interface lo has no address in the cache subnet"),
        ("reserved = 10.77.0.2\n", "this server's address 10.77.0.1 could be handed"),
        ("dnsmasq = /nonexistent/dnsmasq\n", "dnsmasq not found"),
        ("dhcp_state_dir = /proc/cachenet\n", "cannot write reservations under /proc/cachenet"),
        ("dhcp_state_dir = /root/cachenet-dhcp-test\n", "/root is not searchable by others"),
    ],
)
def test_start_errors_are_one_line(cache_network, change, message):
    cache_network.conf.write_text(cache_network.conf.read_text() + change)
    result = cache_network.cachenet("dhcp", "serve", ns=cache_network.server_ns)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serving_goes_on_while_the_store_is_down(cache_network, tmp_path):
    """MariaDB shared by many hosts goes away: leases keep being served, and once it
    is back a port allocated meanwhile is served too."""
    # The server runs in a network namespace, away from the host's loopback: it
    # reaches MariaDB through its Unix socket.
    with databases.mariadb_behind_a_link(tmp_path) as store:
        cache_network.configure(database=store.url)
        port = allocate(cache_network)
        cache_network.start_server()
        assert cache_network.lease(cache_network.client(port["mac"])) == port["address"]

        store.cut()
        log = tmp_path / "serve.log"
        wait_for(lambda: "cannot use the port store" in log.read_text(),
                               "the server to notice", 5)  # fmt: skip
        assert "serving the 1 reservations written before" in log.read_text()
        assert cache_network.server.poll() is None
        assert cache_network.lease(cache_network.client(port["mac"])) == port["address"]

        store.restore()
        later = allocate(cache_network)
        wait_for(
            lambda: cache_network.reservation(later["instance_uuid"]).exists(), "the new port", 5
        )
        assert "port store reachable again" in log.read_text()
        assert cache_network.lease(cache_network.client(later["mac"])) == later["address"]
