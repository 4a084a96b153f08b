"""IPv6 on the cache network: `cachenet dhcp serve` announces each prefix of the pool
(real dnsmasq); a client namespace forms its EUI-64 address by SLAAC, learns no
default route, and reaches the cache node over IPv6, with DHCPv4 unchanged beside it."""

import ipaddress
import json
import subprocess
import time
import uuid

import pytest

from cachenet import hostnet, ipv6
from harness.wait import wait_for

pytestmark = pytest.mark.root

SUBNET = "10.77.0.0/24"
PREFIX = ipaddress.IPv6Network("fd00:77::/64")
OTHER_PREFIX = ipaddress.IPv6Network("fd00:78::/64")
IFA_F_NODAD = 0x02  # the server's own address is usable at once (the bridge has no carrier yet)


def allocate(network):
    result = network.cachenet("ports", "allocate", str(uuid.uuid4()), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def add_ipv6(ns_name, ifname, address):
    with hostnet.route(ns_name) as ns:
        index = ns.link_lookup(ifname=ifname)[0]
        ns.addr("add", index=index, address=str(address), prefixlen=64, flags=IFA_F_NODAD)


def in_ns(ns, *argv):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip


def global_addresses(client):
    """The client's eth0 addresses that are not link-local, once DAD is done."""
    out = in_ns(client, "ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "global")
    infos = json.loads(out.stdout or "[]")
    return {
        ipaddress.IPv6Address(a["local"])
        for link in infos
        for a in link.get("addr_info", [])
        if "local" in a and not a.get("tentative")
    }


def valid_lifetimes(client):
    out = in_ns(client, "ip", "-6", "-j", "addr", "show", "dev", "eth0", "scope", "global")
    return [a["valid_life_time"] for link in json.loads(out.stdout) for a in link["addr_info"]
            if "local" in a]  # fmt: skip


def default_routes(client):
    return in_ns(client, "ip", "-6", "route", "show", "default").stdout.strip()


def wait_for_slaac(network, client, count=1, timeout=20.0):
    wait_for(lambda: len(global_addresses(client)) >= count, "a SLAAC address", timeout)
    time.sleep(1.0)  # a second RA (the other server's, a repeat) has had its chance to add more
    return global_addresses(client)


def ping6(client, address):
    return (
        in_ns(client, "busybox", "ping", "-6", "-c", "1", "-W", "2", str(address)).returncode == 0
    )


def test_a_client_gets_its_eui64_address_no_default_route_and_reaches_the_node(cache_network):
    network = cache_network
    network.configure(subnet=f"{SUBNET}, {PREFIX}", mtu=1400)
    add_ipv6(network.server_ns, "br0", PREFIX[1])
    port = allocate(network)
    network.start_server()
    client = network.client(port["mac"])

    assert wait_for_slaac(network, client) == {ipv6.eui64_address(PREFIX, port["mac"])}
    assert default_routes(client) == ""
    assert in_ns(client, "cat", "/proc/sys/net/ipv6/conf/eth0/mtu").stdout.strip() == "1400"
    (lifetime,) = valid_lifetimes(client)
    assert 86000 < lifetime <= 86400  # a day, not the DHCPv4 lease time nor forever
    assert ping6(client, PREFIX[1])
    # DHCPv4 beside it, unchanged: the reserved address, no router.
    lease = network.lease_details(client)
    assert lease is not None and lease["ip"] == port["address"]
    assert lease["router"] == ""


def test_every_prefix_of_the_pool_is_announced(cache_network):
    network = cache_network
    network.configure(subnet=f"{SUBNET}, {PREFIX}, {OTHER_PREFIX}")
    add_ipv6(network.server_ns, "br0", PREFIX[1])
    add_ipv6(network.server_ns, "br0", OTHER_PREFIX[1])
    port = allocate(network)
    network.start_server()
    client = network.client(port["mac"])
    assert wait_for_slaac(network, client, count=2) == {
        ipv6.eui64_address(PREFIX, port["mac"]),
        ipv6.eui64_address(OTHER_PREFIX, port["mac"]),
    }
    assert default_routes(client) == ""


def test_serve_refuses_an_interface_without_an_address_in_a_prefix(cache_network):
    network = cache_network
    network.configure(subnet=f"{SUBNET}, {PREFIX}")
    result = network.cachenet("dhcp", "serve", ns=network.server_ns)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"cachenet: error: interface br0 has no address in the cache prefix {PREFIX}"
    ]


def test_serve_refuses_a_server_address_an_instance_would_form(cache_network):
    network = cache_network
    network.configure(subnet=f"{SUBNET}, {PREFIX}")
    taken = ipv6.eui64_address(PREFIX, "fa:17:3e:00:00:07")
    add_ipv6(network.server_ns, "br0", taken)
    result = network.cachenet("dhcp", "serve", ns=network.server_ns)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"this server's address {taken} is the EUI-64 address" in line


def test_two_servers_announcing_one_prefix_give_one_address_and_no_default_route(
    shared_cache_network,
):
    network = shared_cache_network
    network.configure(subnet=f"{SUBNET}, {PREFIX}")
    nodes = [network.node("a", "10.77.0.2"), network.node("b", "10.77.0.3")]
    for n, node in enumerate(nodes, start=2):
        add_ipv6(node.ns, "eth0", PREFIX[n])
    for node in nodes:
        node.start()
    port = allocate(network)
    client = network.client(port["mac"])

    assert wait_for_slaac(network, client) == {ipv6.eui64_address(PREFIX, port["mac"])}
    assert default_routes(client) == ""
    advert = f"RTR-ADVERT(eth0) {PREFIX.network_address}"
    for n, node in enumerate(nodes, start=2):
        assert ping6(client, PREFIX[n])
        wait_for(lambda node=node: node.logged(advert), f"{node.ns} to announce")
    # One node gone: the address stays (no state in the other one to disagree with).
    nodes[0].kill()
    assert global_addresses(client) == {ipv6.eui64_address(PREFIX, port["mac"])}
    assert ping6(client, PREFIX[3])


def test_an_ipv6_only_pool_is_served_by_router_advertisements_alone(cache_network):
    network = cache_network
    network.configure(subnet=str(PREFIX), reserved="", mtu=1400)
    add_ipv6(network.server_ns, "br0", PREFIX[1])
    port = allocate(network)
    assert port["address"] is None
    network.start_server()
    client = network.client(port["mac"])

    assert wait_for_slaac(network, client) == {ipv6.eui64_address(PREFIX, port["mac"])}
    assert default_routes(client) == ""
    assert ping6(client, PREFIX[1])
    # No DHCPv4: dnsmasq holds no DHCP socket, writes no reservation, and a client asking
    # gets no answer (br0 still has its IPv4 address: dnsmasq could have bound to it).
    sockets = in_ns(network.server_ns, "ss", "-H", "-uln", "sport", "=", ":67").stdout
    assert sockets.strip() == ""
    assert not network.reservation(port["instance_uuid"]).exists()
    assert network.lease(client, tries=1) is None
