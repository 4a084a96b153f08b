"""``cachenet doctor`` on a DHCP node: a real `cachenet dhcp serve` in the test's
namespace; dnsmasq killed, reservations out of step with the store."""

import os
import signal
import uuid

import pytest

from harness.doctor import run_doctor
from harness.wait import wait_for

pytestmark = pytest.mark.root


def doctor(network):
    return run_doctor(network.conf, "--skip", "libvirt", ns=network.server_ns)


def allocate(network):
    instance = str(uuid.uuid4())
    assert network.cachenet("ports", "allocate", instance).returncode == 0
    return instance


def test_a_serving_node_is_healthy_then_its_dead_dnsmasq_is_named(cache_network):
    network = cache_network
    instances = [allocate(network) for _ in range(2)]
    network.start_server()
    wait_for(lambda: all(network.reservation(i).exists() for i in instances), "sync")
    found = doctor(network)
    assert found.status_of("dnsmasq") == "ok", found.results["dnsmasq"]
    assert f"pid {network.dnsmasq_pid()}" in found.message("dnsmasq")
    assert found.status_of("reservations") == "ok", found.results["reservations"]
    # The node dies hard: its supervisor and dnsmasq are killed, the pid file stays.
    pid = network.dnsmasq_pid()
    network.server.kill()
    network.server.wait(timeout=10)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: network.dnsmasq_pid() is None, "dnsmasq to die")
    found = doctor(network)
    assert found.status == 1
    assert found.status_of("dnsmasq") == "fail"
    assert "dnsmasq is not running" in found.message("dnsmasq")
    assert "cachenet dhcp serve" in found.fix("dnsmasq")
    network.start_server()
    assert doctor(network).status_of("dnsmasq") == "ok"


def test_reservations_out_of_step_with_the_store_are_named(cache_network):
    network = cache_network
    gone, kept = allocate(network), allocate(network)
    assert network.cachenet("dhcp", "sync", "--once").returncode == 0
    assert doctor(network).status_of("reservations") == "ok"
    # No server runs to follow the store: one port released, one allocated.
    released = network.cachenet("ports", "release", gone, "--json")
    assert released.returncode == 0
    new = allocate(network)
    shown = network.cachenet("ports", "show", new, "--json").stdout
    found = doctor(network)
    assert found.status_of("reservations") == "fail"
    message = found.message("reservations")
    assert "1 missing" in message and "1 stale" in message, message
    new_mac = shown.split('"mac": "')[1].split('"')[0]
    assert new_mac in message
    assert found.fix("reservations").startswith("cachenet dhcp sync --once")
    assert network.cachenet("dhcp", "sync", "--once").returncode == 0
    assert doctor(network).status_of("reservations") == "ok"
    assert network.reservation(kept).exists()


def test_a_node_that_is_not_a_dhcp_node_skips_the_dhcp_checks(cache_network):
    network = cache_network
    options = dict(network.options)
    del options["dhcp_interface"]
    network.options = {}
    network.configure(**options)
    found = doctor(network)
    for name in ("dnsmasq", "reservations"):
        assert found.status_of(name) == "skipped"
        assert "not a DHCP node" in found.message(name)
